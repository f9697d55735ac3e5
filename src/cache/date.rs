//! HTTP-date (RFC 9110 §5.6.7): parsing all three formats recipients must accept, formatting the
//! one senders must generate.
//!
//! - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` (the only format generated);
//! - obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`;
//! - obsolete asctime: `Sun Nov  6 08:49:37 1994`.
//!
//! Matching is case-insensitive (RFC 9111 §4.2: a cache recipient SHOULD match date values
//! case-insensitively although the grammar is case-sensitive). Leading and trailing whitespace
//! (SP, HTAB) is ignored; anything else outside the grammar makes the value invalid (`None`), and
//! callers treat an invalid date conservatively (an invalid `Expires` means "already expired").
//! The day name must be a real day name of the right form (short for IMF-fixdate and asctime, long
//! for RFC 850) but is not checked against the date: it is redundant, and the date is what counts.
//! Seconds may be `60` (a leap second, as in RFC 5322); it is counted as the next second.
//!
//! Nothing here reads a clock. The RFC 850 two-digit year is resolved either against a caller-given
//! "now" ([`parse_http_date_at`], exactly as RFC 9110 requires) or with a fixed pivot
//! ([`parse_http_date`]: `70`–`99` → 1970–1999, `00`–`69` → 2000–2069).

/// Seconds from 0000-01-01T00:00:00Z to the Unix epoch (negative).
const MIN_UNIX_S: i64 = -62_167_219_200;
/// 9999-12-31T23:59:59Z: the last instant a four-digit year can express.
const MAX_UNIX_S: i64 = 253_402_300_799;

const SHORT_DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const LONG_DAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

const FMT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const FMT_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// How an RFC 850 two-digit year becomes a full year.
#[derive(Clone, Copy)]
enum TwoDigitYear {
    /// `70`–`99` → 19xx, `00`–`69` → 20xx.
    FixedPivot,
    /// RFC 9110 §5.6.7: a year more than 50 years after `now`'s year is the most recent past year
    /// with the same last two digits.
    RelativeTo(i64),
}

/// Parses an HTTP-date in any of the three formats into Unix seconds; `None` if invalid.
///
/// RFC 850 two-digit years use a fixed pivot (`00`–`69` → 2000–2069, `70`–`99` → 1970–1999);
/// use [`parse_http_date_at`] to apply RFC 9110's "not more than 50 years in the future" rule.
pub fn parse_http_date(s: &str) -> Option<i64> {
    parse(s, TwoDigitYear::FixedPivot)
}

/// Like [`parse_http_date`], but resolves an RFC 850 two-digit year relative to `now_s` (Unix
/// seconds) as RFC 9110 §5.6.7 requires: a year that would be more than 50 years in the future is
/// taken as the most recent past year with the same last two digits (compared by calendar year).
pub fn parse_http_date_at(s: &str, now_s: i64) -> Option<i64> {
    let now_year = civil_from_unix(now_s.clamp(MIN_UNIX_S, MAX_UNIX_S)).0;
    parse(s, TwoDigitYear::RelativeTo(now_year))
}

/// Formats Unix seconds as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
///
/// Values outside years 0000–9999 (which four digits cannot express) are clamped to the nearest
/// representable instant.
pub fn format_http_date(unix_s: i64) -> String {
    let t = unix_s.clamp(MIN_UNIX_S, MAX_UNIX_S);
    let (year, month, day) = civil_from_unix(t);
    let secs = t.rem_euclid(86_400);
    let days = t.div_euclid(86_400);
    // 1970-01-01 was a Thursday (index 4 with Sunday = 0).
    let weekday = usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
    let month_name = FMT_MONTHS
        .get(usize::try_from(month).unwrap_or(1).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        FMT_DAYS.get(weekday).copied().unwrap_or("Sun"),
        day,
        month_name,
        year,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn parse(s: &str, years: TwoDigitYear) -> Option<i64> {
    let s = s.trim_matches([' ', '\t']);
    let mut c = Cursor { b: s.as_bytes() };
    let letters = c.take_while(|b| b.is_ascii_alphabetic());
    let fields = match c.peek()? {
        b',' => {
            c.expect(b", ")?;
            if index_of(&SHORT_DAYS, letters).is_some() {
                imf_fixdate(&mut c)?
            } else if index_of(&LONG_DAYS, letters).is_some() {
                rfc850(&mut c, years)?
            } else {
                return None;
            }
        }
        b' ' => {
            index_of(&SHORT_DAYS, letters)?;
            c.expect(b" ")?;
            asctime(&mut c)?
        }
        _ => return None,
    };
    if !c.b.is_empty() {
        return None;
    }
    fields.to_unix()
}

/// `DD Mon YYYY HH:MM:SS GMT`, after `day-name ", "`.
fn imf_fixdate(c: &mut Cursor) -> Option<Fields> {
    let day = c.digits(2)?;
    c.expect(b" ")?;
    let month = c.month()?;
    c.expect(b" ")?;
    let year = i64::from(c.digits(4)?);
    c.expect(b" ")?;
    let (hour, minute, second) = c.time()?;
    c.expect(b" GMT")?;
    Some(Fields {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// `DD-Mon-YY HH:MM:SS GMT`, after `day-name-l ", "`.
fn rfc850(c: &mut Cursor, years: TwoDigitYear) -> Option<Fields> {
    let day = c.digits(2)?;
    c.expect(b"-")?;
    let month = c.month()?;
    c.expect(b"-")?;
    let yy = i64::from(c.digits(2)?);
    c.expect(b" ")?;
    let (hour, minute, second) = c.time()?;
    c.expect(b" GMT")?;
    let year = match years {
        TwoDigitYear::FixedPivot => {
            if yy < 70 {
                2000 + yy
            } else {
                1900 + yy
            }
        }
        TwoDigitYear::RelativeTo(now_year) => {
            let candidate = now_year - now_year.rem_euclid(100) + yy;
            if candidate > now_year + 50 {
                candidate - 100
            } else if candidate <= now_year - 50 {
                candidate + 100
            } else {
                candidate
            }
        }
    };
    Some(Fields {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// `Mon ( DD / " D" ) HH:MM:SS YYYY`, after `day-name " "`.
fn asctime(c: &mut Cursor) -> Option<Fields> {
    let month = c.month()?;
    c.expect(b" ")?;
    let day = if c.peek()? == b' ' {
        c.expect(b" ")?;
        c.digits(1)?
    } else {
        c.digits(2)?
    };
    c.expect(b" ")?;
    let (hour, minute, second) = c.time()?;
    c.expect(b" ")?;
    let year = i64::from(c.digits(4)?);
    Some(Fields {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

struct Fields {
    year: i64,
    /// 1–12.
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Fields {
    fn to_unix(&self) -> Option<i64> {
        if !(0..=9999).contains(&self.year)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 60
        {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = i64::from(self.hour * 3600 + self.minute * 60 + self.second);
        days.checked_mul(86_400)?.checked_add(secs)
    }
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.first().copied()
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let n = self.b.iter().take_while(|&&b| f(b)).count();
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        head
    }

    /// Consumes `lit`, compared ASCII-case-insensitively.
    fn expect(&mut self, lit: &[u8]) -> Option<()> {
        let head = self.b.get(..lit.len())?;
        if !head.eq_ignore_ascii_case(lit) {
            return None;
        }
        self.b = self.b.get(lit.len()..)?;
        Some(())
    }

    /// Exactly `n` ASCII digits (n ≤ 4, so the value fits).
    fn digits(&mut self, n: usize) -> Option<u32> {
        let head = self.b.get(..n)?;
        let mut v: u32 = 0;
        for &b in head {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(b - b'0');
        }
        self.b = self.b.get(n..)?;
        Some(v)
    }

    /// A three-letter month name; returns 1–12.
    fn month(&mut self) -> Option<u32> {
        let head = self.b.get(..3)?;
        let i = index_of(&MONTHS, head)?;
        self.b = self.b.get(3..)?;
        u32::try_from(i + 1).ok()
    }

    /// `HH:MM:SS` (ranges are checked later).
    fn time(&mut self) -> Option<(u32, u32, u32)> {
        let h = self.digits(2)?;
        self.expect(b":")?;
        let m = self.digits(2)?;
        self.expect(b":")?;
        let s = self.digits(2)?;
        Some((h, m, s))
    }
}

fn index_of(names: &[&str], s: &[u8]) -> Option<usize> {
    names
        .iter()
        .position(|n| n.as_bytes().eq_ignore_ascii_case(s))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
/// Callers keep `year` within 0–9999, so nothing can overflow.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((month + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// (year, month 1–12, day 1–31) of Unix seconds already clamped to years 0000–9999.
fn civil_from_unix(t: i64) -> (i64, u32, u32) {
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}
