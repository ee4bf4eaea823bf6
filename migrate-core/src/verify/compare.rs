//! Comparing one key as the source and the target hold it: one difference per key, the
//! first that applies of missing / extra / type / value / ttl, with a few words on what
//! differs (values only as short prefixes).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::digest::Acc;
use super::read::{now_ms, FieldTtls, GroupVal, KeyState, StreamVal, Val};
use super::report::{prefix, quoted, DiffKind};

/// The difference between `src` and `dst`, if any; expiries may differ by `tol` ms.
pub(crate) fn compare(src: &KeyState, dst: &KeyState, tol: i64) -> Option<(DiffKind, String)> {
    match (
        matches!(src.val, Val::Absent),
        matches!(dst.val, Val::Absent),
    ) {
        (true, true) => return None,
        (true, false) => {
            return Some((DiffKind::Extra, format!("a {} only on the target", dst.ty)))
        }
        (false, true) => {
            return Some((DiffKind::Missing, format!("a {} not on the target", src.ty)))
        }
        (false, false) => {}
    }
    if src.ty != dst.ty {
        return Some((DiffKind::Type, format!("{} vs {}", src.ty, dst.ty)));
    }
    if let Some(d) = value(&src.ty, &src.val, &dst.val) {
        return Some((DiffKind::Value, d));
    }
    if let Some(d) = expiry(src.expire_at, dst.expire_at, tol) {
        return Some((DiffKind::Ttl, d));
    }
    if let (Some(a), Some(b)) = (&src.field_ttls, &dst.field_ttls) {
        if let Some(d) = field_ttls(a, b, tol) {
            return Some((DiffKind::Ttl, d));
        }
    }
    None
}

fn show_expiry(at: Option<i64>, now: i64) -> String {
    match at {
        None => "no expiry".into(),
        Some(t) => format!("expires in {} ms", t - now),
    }
}

fn expiry(a: Option<i64>, b: Option<i64>, tol: i64) -> Option<String> {
    match (a, b) {
        (None, None) => None,
        (Some(x), Some(y)) if (x - y).abs() <= tol => None,
        (x, y) => {
            let now = now_ms();
            Some(format!(
                "{} vs {}",
                show_expiry(x, now),
                show_expiry(y, now)
            ))
        }
    }
}

fn field_ttls(a: &FieldTtls, b: &FieldTtls, tol: i64) -> Option<String> {
    if let (Some(x), Some(y)) = (&a.map, &b.map) {
        let fields: BTreeSet<&Bytes> = x.keys().chain(y.keys()).collect();
        for f in fields {
            match (x.get(f), y.get(f)) {
                (Some(p), Some(q)) if (p - q).abs() <= tol => {}
                (p, q) => {
                    let show = |t: Option<&i64>| match t {
                        None => "no expiry".to_string(),
                        Some(t) => format!("expires at {t}"),
                    };
                    return Some(format!("field {}: {} vs {}", prefix(f), show(p), show(q)));
                }
            }
        }
        return None;
    }
    let same = a.count == b.count
        && a.names == b.names
        && (a.sum - b.sum).abs() <= i128::from(tol) * i128::from(a.count.max(1) as i64);
    (!same).then(|| {
        format!(
            "field expiries differ ({} vs {} fields with a TTL)",
            a.count, b.count
        )
    })
}

fn unread(side: &str, why: &str) -> String {
    if why.is_empty() {
        format!("not readable on the {side}")
    } else {
        format!("not readable on the {side}: {}", prefix(why.as_bytes()))
    }
}

fn value(ty: &str, a: &Val, b: &Val) -> Option<String> {
    match (a, b) {
        (Val::Unread(e), _) => Some(unread("source", e)),
        (_, Val::Unread(e)) => Some(unread("target", e)),
        (Val::Items(x), Val::Items(y)) => items(ty, x, y),
        (Val::Stream(x), Val::Stream(y)) => stream(x, y),
        (Val::Blob(x), Val::Blob(y)) if x == y => None,
        (Val::Blob(x), Val::Blob(y)) if ty == "ReJSON-RL" => {
            Some(format!("JSON {} vs {}", prefix(x), prefix(y)))
        }
        (Val::Blob(x), Val::Blob(y)) => Some(format!(
            "serialized values differ ({} vs {} bytes)",
            x.len(),
            y.len()
        )),
        (Val::Pairs(x), Val::Pairs(y)) if x == y => None,
        (Val::Pairs(x), Val::Pairs(y)) => Some(match first_diff(x, y) {
            Some(i) => format!(
                "item {i}: {} vs {}",
                x.get(i)
                    .map_or("none".into(), |(k, n)| format!("{} x{n}", prefix(k))),
                y.get(i)
                    .map_or("none".into(), |(k, n)| format!("{} x{n}", prefix(k)))
            ),
            None => "items differ".into(),
        }),
        _ => Some("values of different shapes".into()),
    }
}

fn first_diff<T: PartialEq>(x: &[T], y: &[T]) -> Option<usize> {
    (0..x.len().max(y.len())).find(|&i| x.get(i) != y.get(i))
}

fn items(ty: &str, x: &Acc, y: &Acc) -> Option<String> {
    let (Some(a), Some(b)) = (x.items(), y.items()) else {
        if x.same_digest(y) {
            return None;
        }
        let unit = if ty == "string" { "chunks" } else { "elements" };
        return Some(format!(
            "contents differ ({} vs {} {unit}; compared by digest)",
            x.count, y.count
        ));
    };
    if a == b {
        return None;
    }
    Some(match ty {
        "string" => {
            let empty = Bytes::new();
            let s = a.first().map_or(&empty, |v| &v[0]);
            let t = b.first().map_or(&empty, |v| &v[0]);
            let at = (0..s.len().min(t.len()))
                .find(|&i| s[i] != t[i])
                .unwrap_or(s.len().min(t.len()));
            if s.len() != t.len() {
                format!(
                    "{} vs {} bytes ({} vs {})",
                    s.len(),
                    t.len(),
                    prefix(s),
                    prefix(t)
                )
            } else {
                format!(
                    "differs at byte {at}: {} vs {}",
                    prefix(&s[at..]),
                    prefix(&t[at..])
                )
            }
        }
        "list" => match first_diff(&a, &b) {
            Some(i) if i >= a.len() || i >= b.len() => {
                format!("{} vs {} elements", a.len(), b.len())
            }
            Some(i) => format!("element {i}: {} vs {}", prefix(&a[i][0]), prefix(&b[i][0])),
            None => "lists differ".into(),
        },
        "zset" => {
            let ma: BTreeMap<&Bytes, &Bytes> = a.iter().map(|v| (&v[0], &v[1])).collect();
            let mb: BTreeMap<&Bytes, &Bytes> = b.iter().map(|v| (&v[0], &v[1])).collect();
            keyed("member", &ma, &mb, |s| format!("score {}", text(s)))
        }
        "hash" => {
            let ma: BTreeMap<&Bytes, &Bytes> = a.iter().map(|v| (&v[0], &v[1])).collect();
            let mb: BTreeMap<&Bytes, &Bytes> = b.iter().map(|v| (&v[0], &v[1])).collect();
            keyed("field", &ma, &mb, |v| prefix(v))
        }
        _ => {
            let ma: BTreeMap<&Bytes, &Bytes> = a.iter().map(|v| (&v[0], &v[0])).collect();
            let mb: BTreeMap<&Bytes, &Bytes> = b.iter().map(|v| (&v[0], &v[0])).collect();
            keyed("member", &ma, &mb, |_| String::new())
        }
    })
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The first name only on one side, or with another value.
fn keyed(
    what: &str,
    a: &BTreeMap<&Bytes, &Bytes>,
    b: &BTreeMap<&Bytes, &Bytes>,
    show: impl Fn(&Bytes) -> String,
) -> String {
    let names: BTreeSet<&&Bytes> = a.keys().chain(b.keys()).collect();
    for n in names {
        match (a.get(*n), b.get(*n)) {
            (Some(_), None) => {
                return format!(
                    "{what} {} not on the target ({} vs {})",
                    prefix(n),
                    a.len(),
                    b.len()
                )
            }
            (None, Some(_)) => {
                return format!(
                    "{what} {} only on the target ({} vs {})",
                    prefix(n),
                    a.len(),
                    b.len()
                )
            }
            (Some(x), Some(y)) if x != y => {
                return format!("{what} {}: {} vs {}", prefix(n), show(x), show(y))
            }
            _ => {}
        }
    }
    "contents differ".into()
}

fn stream(x: &StreamVal, y: &StreamVal) -> Option<String> {
    if x.length != y.length {
        return Some(format!("{} vs {} entries", x.length, y.length));
    }
    if let Some(d) = items("stream", &x.entries, &y.entries) {
        // Name the first differing entry id when both were kept.
        if let (Some(a), Some(b)) = (x.entries.items(), y.entries.items()) {
            if let Some(i) = first_diff(&a, &b) {
                let id = a
                    .get(i)
                    .or(b.get(i))
                    .map(|v| text(&v[0]))
                    .unwrap_or_default();
                return Some(format!("entry {id} differs"));
            }
        }
        return Some(format!("entries: {d}"));
    }
    if x.last_id != y.last_id {
        return Some(format!("last-generated-id {} vs {}", x.last_id, y.last_id));
    }
    let names =
        |s: &StreamVal| -> BTreeSet<Bytes> { s.groups.iter().map(|g| g.name.clone()).collect() };
    let (na, nb) = (names(x), names(y));
    if let Some(n) = na.difference(&nb).next() {
        return Some(format!("group {} not on the target", quoted(n)));
    }
    if let Some(n) = nb.difference(&na).next() {
        return Some(format!("group {} only on the target", quoted(n)));
    }
    for (g, h) in x.groups.iter().zip(&y.groups) {
        if let Some(d) = group(g, h) {
            return Some(format!("group {}: {d}", quoted(&g.name)));
        }
    }
    None
}

fn group(g: &GroupVal, h: &GroupVal) -> Option<String> {
    if g.last_delivered != h.last_delivered {
        return Some(format!(
            "last-delivered-id {} vs {}",
            g.last_delivered, h.last_delivered
        ));
    }
    if g.pel_count != h.pel_count {
        return Some(format!(
            "{} vs {} pending entries",
            g.pel_count, h.pel_count
        ));
    }
    if g.consumers != h.consumers {
        let a: BTreeMap<&Bytes, i64> = g.consumers.iter().map(|(n, c)| (n, *c)).collect();
        let b: BTreeMap<&Bytes, i64> = h.consumers.iter().map(|(n, c)| (n, *c)).collect();
        let names: BTreeSet<&&Bytes> = a.keys().chain(b.keys()).collect();
        for n in names {
            match (a.get(*n), b.get(*n)) {
                (Some(_), None) => {
                    return Some(format!("consumer {} not on the target", quoted(n)))
                }
                (None, Some(_)) => {
                    return Some(format!("consumer {} only on the target", quoted(n)))
                }
                (Some(p), Some(q)) if p != q => {
                    return Some(format!("consumer {}: {p} vs {q} pending", quoted(n)))
                }
                _ => {}
            }
        }
    }
    if let (Some(p), Some(q)) = (&g.pending, &h.pending) {
        if let Some(i) = first_diff(p, q) {
            let show = |e: Option<&(String, Bytes, i64)>| match e {
                None => "none".to_string(),
                Some((id, c, n)) => format!("{id} to {} x{n}", quoted(c)),
            };
            return Some(format!(
                "pending entry {}: {} vs {}",
                i,
                show(p.get(i)),
                show(q.get(i))
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(ty: &str, items: &[&[&str]], ordered: bool, ttl: Option<i64>) -> KeyState {
        let mut acc = Acc::new(ordered, 1 << 20);
        for it in items {
            acc.push(
                it.iter()
                    .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                    .collect(),
            );
        }
        KeyState {
            ty: ty.into(),
            expire_at: ttl,
            val: Val::Items(acc),
            field_ttls: None,
            redirected: None,
        }
    }

    #[test]
    fn kinds_and_details() {
        let a = state("hash", &[&["f", "1"], &["g", "2"]], false, None);
        let b = state("hash", &[&["g", "2"], &["f", "3"]], false, None);
        let (k, d) = compare(&a, &b, 1000).unwrap();
        assert_eq!(k, DiffKind::Value);
        assert_eq!(d, "field \"f\": \"1\" vs \"3\"");
        let c = state("hash", &[&["g", "2"], &["f", "1"]], false, Some(5000));
        assert_eq!(compare(&a, &c, 1000).unwrap().0, DiffKind::Ttl);
        let l = state("list", &[&["x"]], true, None);
        assert_eq!(
            compare(&a, &l, 1000).unwrap(),
            (DiffKind::Type, "hash vs list".into())
        );
        let absent = KeyState {
            ty: "none".into(),
            expire_at: None,
            val: Val::Absent,
            field_ttls: None,
            redirected: None,
        };
        assert_eq!(compare(&a, &absent, 1000).unwrap().0, DiffKind::Missing);
        assert_eq!(compare(&absent, &a, 1000).unwrap().0, DiffKind::Extra);
        assert!(compare(&absent, &absent, 1000).is_none());
        let t1 = state("string", &[&["v"]], true, Some(10_000));
        let t2 = state("string", &[&["v"]], true, Some(10_500));
        assert!(compare(&t1, &t2, 1000).is_none());
    }
}
