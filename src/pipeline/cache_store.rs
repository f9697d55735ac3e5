//! What the cache stage does with responses: reading a stored entry's facts, serving it (304,
//! 206, 416 and HEAD included), storing an upstream response, and updating an entry from a
//! `304` (RFC 9111 §3.2, §4.3.4). The rules are in `crate::cache`; this applies them through
//! the response-cache port.

use super::cache::{answer_headers, answer_removals, internal};
use super::cache_request::Conditions;
use super::ctx::{CacheKeys, CacheResult, Ctx, Source};
use super::ports::{Guard, Ports, Responses, Serve};
use super::state::Services;
use crate::cache::entry::{self, EntryMeta};
use crate::cache::range::{self, RangeAnswer, Validators};
use crate::cache::targeted::TARGET_LIST;
use crate::cache::{
    cache_status, forbids_stale, format_http_date, freshness_lifetime_s, initial_age_s,
    not_modified, preconditions_apply, retention_s, stale_if_error_window_s,
    stale_while_revalidate_window_s, storable, CacheOutcome, NotStored, RequestFacts,
    ResponseFacts,
};
use crate::config::CacheSpec;
use crate::error::GatewayError;

/// Response headers read from an upstream response (a full one or a 304).
const RESPONSE_FACTS: [&str; 12] = [
    "cache-control",
    "expires",
    "date",
    "set-cookie",
    "vary",
    "content-length",
    "etag",
    "last-modified",
    "age",
    TARGET_LIST[0],
    TARGET_LIST[1],
    "content-encoding",
];

/// The named headers of an upstream response, owned.
pub struct Facts(Vec<Option<String>>);

impl Facts {
    pub fn of<P: Responses>(ports: &P, response: &P::Response) -> Facts {
        Facts(ports.headers(response, &RESPONSE_FACTS))
    }

    fn get(&self, i: usize) -> Option<&str> {
        self.0.get(i).and_then(|v| v.as_deref())
    }

    pub fn etag(&self) -> Option<&str> {
        self.get(6)
    }

    pub fn last_modified(&self) -> Option<&str> {
        self.get(7)
    }

    /// The storability facts, with `received_date` standing in for a missing `Date`.
    fn response<'a>(&'a self, status: u16, received_date: &'a str) -> ResponseFacts<'a> {
        ResponseFacts {
            status,
            cache_control: self.get(0),
            expires: self.get(1),
            date: self.get(2).or(Some(received_date)),
            has_set_cookie: self.get(3).is_some(),
            vary: self.get(4),
            content_length: self.get(5).and_then(|l| l.trim().parse().ok()),
            has_etag: self.get(6).is_some(),
            has_last_modified: self.get(7).is_some(),
            targeted: [self.get(9), self.get(10)],
        }
    }
}

/// A stored entry's headers: its bookkeeping (in `entry::BOOKKEEPING` order), then these.
const ENTRY_EXTRA: [&str; 7] = [
    "etag",
    "last-modified",
    "content-length",
    "expires",
    "date",
    "vary",
    "content-encoding",
];

/// Where `name` is in `entry::BOOKKEEPING` (always found for the names it lists).
fn bookkeeping_index(name: &str) -> usize {
    entry::BOOKKEEPING
        .iter()
        .position(|n| *n == name)
        .unwrap_or(usize::MAX)
}

/// What the stage knows of a stored entry.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The status it is served with (the upstream's).
    pub status: u16,
    pub meta: EntryMeta,
    values: Vec<Option<String>>,
}

impl Stored {
    /// Reads an entry; `None` when its bookkeeping is missing or malformed (it is then as good
    /// as absent).
    pub fn read<P: Responses>(ports: &P, entry: &P::Response) -> Option<Stored> {
        let mut names: Vec<&str> = entry::BOOKKEEPING.to_vec();
        names.extend(ENTRY_EXTRA);
        let values = ports.headers(entry, &names);
        Stored::from_values(values, ports.status(entry))
    }

    /// From the values of `BOOKKEEPING` then `ENTRY_EXTRA`.
    fn from_values(values: Vec<Option<String>>, platform_status: u16) -> Option<Stored> {
        let meta = EntryMeta::from_bookkeeping(&values)?;
        // Only a status the gateway relays can have been recorded; anything else is not ours.
        let status = values
            .get(bookkeeping_index(entry::STATUS))
            .and_then(|v| v.as_deref())
            .and_then(|s| s.parse().ok())
            .filter(|s| (200..=599).contains(s))
            .unwrap_or(platform_status);
        Some(Stored {
            status,
            meta,
            values,
        })
    }

    fn get(&self, i: usize) -> Option<&str> {
        self.values.get(i).and_then(|v| v.as_deref())
    }

    fn extra(&self, name: &str) -> Option<&str> {
        let i = ENTRY_EXTRA.iter().position(|n| *n == name)?;
        self.get(entry::BOOKKEEPING.len() + i)
    }

    pub fn etag(&self) -> Option<&str> {
        self.extra("etag")
    }

    pub fn last_modified(&self) -> Option<&str> {
        self.extra("last-modified")
    }

    /// The stored body's length, when ranges can be cut from it: known, and of a body without
    /// a content coding (a range of a coded body would be a range of the coding's bytes). The
    /// coding is in the bookkeeping (`entry::CONTENT_ENCODING`), or, in an entry stored before
    /// it was, in the stored copy itself.
    fn length(&self) -> Option<u64> {
        let coded = self
            .get(bookkeeping_index(entry::CONTENT_ENCODING))
            .or_else(|| self.extra("content-encoding"))
            .is_some_and(|c| !c.trim().eq_ignore_ascii_case("identity"));
        if coded {
            return None;
        }
        self.extra("content-length")
            .and_then(|l| l.trim().parse().ok())
    }

    fn set_extra(&mut self, name: &str, value: Option<&str>) {
        if let Some(i) = ENTRY_EXTRA.iter().position(|n| *n == name) {
            let at = entry::BOOKKEEPING.len() + i;
            if let Some(slot) = self.values.get_mut(at) {
                *slot = value.map(str::to_owned);
            }
        }
    }
}

/// Serves a stored entry to the client with `outcome`: `304` when the client's conditions hold
/// for it, `206`/`416` for a `Range` (see `crate::cache::range`), without a body for HEAD.
#[allow(clippy::too_many_arguments)]
pub fn serve_stored<P: Ports>(
    cx: &mut Ctx,
    s: Services<'_, P>,
    entry: P::Response,
    stored: &Stored,
    cond: &Conditions,
    outcome: CacheOutcome,
    age_s: u64,
    ttl_s: i64,
) -> Result<P::Response, GatewayError> {
    cx.notes.cache = Some(CacheResult::from(&outcome));
    cx.notes.source = Source::Cache;
    let head_only = cx.request.method == "HEAD";
    let not_mod = preconditions_apply(stored.status)
        && not_modified(
            cond.if_none_match.as_deref(),
            cond.if_modified_since.as_deref(),
            stored.etag(),
            stored.last_modified(),
        );
    let answer = if not_mod || head_only {
        RangeAnswer::Full
    } else {
        range::select(
            cond.range.as_deref(),
            cond.if_range.as_deref(),
            stored.status,
            stored.length(),
            Validators {
                etag: stored.etag(),
                last_modified: stored.last_modified(),
            },
        )
    };
    let range = match answer {
        RangeAnswer::Full => None,
        RangeAnswer::Partial { start, end, length } => Some((start, end, length)),
        RangeAnswer::Unsatisfiable { length } => {
            s.ports.discard(entry);
            return Err(GatewayError::RangeNotSatisfiable {
                length,
                cache_status: cache_status(&outcome, Some(ttl_s)),
            });
        }
    };
    let set = answer_headers(s.gateway, cx, age_s, cache_status(&outcome, Some(ttl_s)));
    let how = Serve {
        status: stored.status,
        not_modified: not_mod,
        head_only,
        range,
    };
    s.ports
        .serve_entry(entry, &answer_removals(s.gateway, cx), &set, how)
        .map_err(|e| internal("serving a cached response", e))
}

/// The headers a stored copy drops: bookkeeping an upstream might have sent, what describes one
/// exchange, the request id, the targeted fields (kept as bookkeeping) and the fields a
/// qualified `private`/`no-cache` names.
fn removed_from_copy<'a>(request_id_header: &'a str, stripped: &'a [String]) -> Vec<&'a str> {
    let mut remove: Vec<&str> = entry::BOOKKEEPING.to_vec();
    remove.extend(entry::PER_EXCHANGE);
    remove.push(request_id_header);
    remove.extend(TARGET_LIST);
    remove.extend(stripped.iter().map(String::as_str));
    remove
}

/// The bookkeeping of an entry stored (or refreshed) now from `resp`.
fn bookkeeping(resp: &ResponseFacts, spec: &CacheSpec, meta: &EntryMeta) -> Vec<(String, String)> {
    let mut set: Vec<(String, String)> = meta
        .headers(resp.cache_control, retention_s(resp, spec))
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    set.push((entry::STATUS.to_owned(), resp.status.to_string()));
    for (name, value) in entry::TARGETED.iter().zip(resp.targeted) {
        if let Some(v) = value {
            set.push(((*name).to_owned(), v.to_owned()));
        }
    }
    set
}

/// The route's cache settings as they apply to `resp` (to the request `req`), and the
/// bookkeeping of an entry made from it at `times`, with its `Age` header `age`: one
/// derivation for a stored response and for one a 304 refreshed.
fn applicable_meta<'s>(
    req: &RequestFacts,
    resp: &ResponseFacts,
    spec: &'s CacheSpec,
    age: Option<&str>,
    times: Times,
) -> (std::borrow::Cow<'s, CacheSpec>, EntryMeta) {
    let applicable = crate::cache::rules::applicable(req, resp, spec, spec.per_consumer);
    let meta = entry_meta(resp, &applicable, age, times.request_ms, times.response_ms);
    (applicable, meta)
}

/// The entry's bookkeeping for `resp`, received between `request_ms` and `response_ms`.
fn entry_meta(
    resp: &ResponseFacts,
    spec: &CacheSpec,
    age: Option<&str>,
    request_ms: f64,
    response_ms: f64,
) -> EntryMeta {
    EntryMeta {
        stored_at_ms: response_ms as u64,
        initial_age_s: initial_age_s(
            age,
            resp.date,
            (request_ms / 1000.0) as i64,
            (response_ms / 1000.0) as i64,
        ),
        lifetime_s: freshness_lifetime_s(resp, spec),
        stale_if_error_s: stale_if_error_window_s(resp, spec),
        stale_while_revalidate_s: stale_while_revalidate_window_s(resp, spec),
        forbids_stale: forbids_stale(resp),
    }
}

/// Times of one exchange (the platform's clock, milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub request_ms: f64,
    pub response_ms: f64,
}

/// Stores `response` (in the background) when the rules allow: the `Cache-Status` outcome and
/// the remaining freshness it reports.
#[allow(clippy::too_many_arguments)]
pub fn store_response<P: Ports>(
    s: Services<'_, P>,
    spec: &CacheSpec,
    keys: &CacheKeys,
    response: &P::Response,
    facts: &Facts,
    req: &RequestFacts,
    head_only: bool,
    times: Times,
) -> (CacheOutcome, Option<i64>) {
    let received_date = format_http_date((times.response_ms / 1000.0) as i64);
    let resp = facts.response(s.ports.status(response), &received_date);
    let decision = if head_only {
        Err(NotStored::Method)
    } else {
        storable(req, &resp, spec, &spec.vary, spec.per_consumer)
    };
    if let Err(why) = decision {
        let outcome = CacheOutcome::Miss {
            stored: false,
            reason: Some(why.reason()),
        };
        return (outcome, None);
    }
    let (applicable, meta) = applicable_meta(req, &resp, spec, facts.get(8), times);
    let stripped = resp.control().stripped_fields();
    let mut remove = removed_from_copy(&s.gateway.config.settings.request_id_header, &stripped);
    let mut set = bookkeeping(&resp, &applicable, &meta);
    // The copy is stored decoded and unlabelled; the label is restored when it is served.
    remove.push("content-encoding");
    if let Some(coding) = facts.get(11) {
        set.push((entry::CONTENT_ENCODING.to_owned(), coding.to_owned()));
    }
    let guard = Guard {
        marker: &keys.guard(),
        stored_at_ms: meta.stored_at_ms,
    };
    s.ports.store(
        &keys.entry,
        response,
        &remove,
        &set,
        spec.max_body_bytes,
        guard,
    );
    let outcome = CacheOutcome::Miss {
        stored: true,
        reason: None,
    };
    let ttl = crate::cache::ttl_remaining_s(meta.lifetime_s, meta.initial_age_s);
    (outcome, Some(ttl))
}

/// A stored entry after a successful revalidation.
pub struct Revalidated<R> {
    pub entry: R,
    pub stored: Stored,
    /// The refreshed entry was written back (it is still storable).
    pub written: bool,
    pub ttl_s: i64,
}

/// Updates `entry` from the 304 `fresh` (RFC 9111 §3.2): every header of the 304 except the
/// framing ones replaces the stored one — `Cache-Control`, `Expires`, `ETag`, the targeted
/// fields and any end-to-end header — and the freshness is computed again from the merged
/// headers (a missing `Date` is the time of the 304). The updated entry is written back when
/// it is still storable. `fresh` is not consumed.
#[allow(clippy::too_many_arguments)]
pub fn revalidate<P: Ports>(
    s: Services<'_, P>,
    spec: &CacheSpec,
    keys: &CacheKeys,
    entry: P::Response,
    stored: &Stored,
    fresh: &P::Response,
    req: &RequestFacts,
    times: Times,
) -> Result<Revalidated<P::Response>, GatewayError> {
    let f = Facts::of(s.ports, fresh);
    let received_date = format_http_date((times.response_ms / 1000.0) as i64);
    fn pick<'a>(f: &'a Facts, i: usize, stored_value: Option<&'a str>) -> Option<&'a str> {
        f.get(i).or(stored_value)
    }
    let cache_control = f.get(0).map(str::to_owned).or_else(|| {
        stored
            .get(bookkeeping_index(entry::ORIGINAL_CACHE_CONTROL))
            .map(str::to_owned)
    });
    let expires = pick(&f, 1, stored.extra("expires")).map(str::to_owned);
    let etag = pick(&f, 6, stored.etag()).map(str::to_owned);
    let last_modified = pick(&f, 7, stored.last_modified()).map(str::to_owned);
    let vary = pick(&f, 4, stored.extra("vary")).map(str::to_owned);
    let targeted = [
        pick(&f, 9, stored.get(bookkeeping_index(entry::TARGETED[0]))).map(str::to_owned),
        pick(&f, 10, stored.get(bookkeeping_index(entry::TARGETED[1]))).map(str::to_owned),
    ];
    let resp = ResponseFacts {
        status: stored.status,
        cache_control: cache_control.as_deref(),
        expires: expires.as_deref(),
        date: f.get(2).or(Some(&received_date)),
        has_set_cookie: false,
        vary: vary.as_deref(),
        content_length: stored.length(),
        has_etag: etag.is_some(),
        has_last_modified: last_modified.is_some(),
        targeted: [targeted[0].as_deref(), targeted[1].as_deref()],
    };
    let still_storable = storable(req, &resp, spec, &spec.vary, spec.per_consumer).is_ok();
    let (applicable, meta) = applicable_meta(req, &resp, spec, f.get(8), times);
    let stripped = resp.control().stripped_fields();
    let request_id = &s.gateway.config.settings.request_id_header;
    let mut exclude: Vec<&str> = entry::NOT_UPDATED_BY_304.to_vec();
    exclude.extend(entry::BOOKKEEPING);
    exclude.push(request_id);
    let remove: Vec<&str> = stripped.iter().map(String::as_str).collect();
    let set = bookkeeping(&resp, &applicable, &meta);
    let updated = s
        .ports
        .update_entry(entry, fresh, &exclude, &remove, &set)
        .map_err(|e| internal("updating a revalidated entry", e))?;
    if still_storable {
        let guard = Guard {
            marker: &keys.guard(),
            stored_at_ms: meta.stored_at_ms,
        };
        s.ports
            .refresh(&keys.entry, &updated, stored.length(), guard);
    }
    let mut view = stored.clone();
    view.meta = meta;
    view.set_extra("etag", etag.as_deref());
    view.set_extra("last-modified", last_modified.as_deref());
    Ok(Revalidated {
        entry: updated,
        stored: view,
        written: still_storable,
        ttl_s: crate::cache::ttl_remaining_s(meta.lifetime_s, meta.initial_age_s),
    })
}
