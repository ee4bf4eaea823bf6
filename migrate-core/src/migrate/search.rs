//! RediSearch index definitions: they live in module auxiliary data, which no command
//! loads, so a live source's indexes are described by `FT.INFO` and recreated on the target
//! with `FT.CREATE` before the keys arrive (the keys are then indexed as they are written).
//!
//! Pure: `FT.INFO` and `FT.SYNDUMP` replies in, commands out. What `FT.INFO` does not show
//! cannot be carried: `PHONETIC` on text fields, index aliases (no command lists them),
//! dictionaries (`FT.DICTADD`), `TEMPORARY`. After creation the target's `FT.INFO` is
//! compared with the source's, and any difference is reported.

use bytes::Bytes;
use resp_codec::Frame;

/// The `FT.CREATE` (and `FT.SYNUPDATE`s) that recreate one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexPlan {
    /// The index name.
    pub(crate) name: Bytes,
    /// `FT.CREATE name ...`.
    pub(crate) create: Vec<Bytes>,
    /// `FT.SYNUPDATE name group term...`, one per synonym group.
    pub(crate) synonyms: Vec<Vec<Bytes>>,
}

/// Field names and values of a flat `[k, v, k, v, ...]` reply (RESP2) or a map (RESP3).
fn pairs(frame: &Frame) -> Vec<(&[u8], &Frame)> {
    match frame {
        Frame::Array(items) => items
            .chunks_exact(2)
            .filter_map(|kv| Some((kv[0].as_bytes()?, &kv[1])))
            .collect(),
        Frame::Map(kv) => kv
            .iter()
            .filter_map(|(k, v)| Some((k.as_bytes()?, v)))
            .collect(),
        _ => Vec::new(),
    }
}

fn field<'a>(frame: &'a Frame, name: &str) -> Option<&'a Frame> {
    pairs(frame)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

fn text(frame: &Frame) -> Option<Bytes> {
    match frame {
        Frame::Integer(i) => Some(Bytes::from(i.to_string())),
        Frame::Double(d) => Some(Bytes::from(d.to_string())),
        f => f.as_bytes().map(Bytes::copy_from_slice),
    }
}

fn words(frame: &Frame) -> Vec<Bytes> {
    frame
        .as_slice()
        .map(|items| items.iter().filter_map(text).collect())
        .unwrap_or_default()
}

/// Options of a VECTOR field as `FT.INFO` names them, and as `FT.CREATE` wants them.
const VECTOR_PARAMS: &[(&str, &str)] = &[
    ("data_type", "TYPE"),
    ("dim", "DIM"),
    ("distance_metric", "DISTANCE_METRIC"),
    ("initial_cap", "INITIAL_CAP"),
    ("block_size", "BLOCK_SIZE"),
    ("M", "M"),
    ("ef_construction", "EF_CONSTRUCTION"),
    ("ef_runtime", "EF_RUNTIME"),
    ("epsilon", "EPSILON"),
];

/// One attribute: `identifier AS attribute TYPE options...`.
fn attribute(attr: &Frame, out: &mut Vec<Bytes>) -> Result<(), String> {
    let items = attr.as_slice().ok_or("an attribute is not an array")?;
    let mut it = items.iter().filter_map(text);
    let mut identifier = None;
    let mut name = None;
    let mut kind = None;
    let mut rest = Vec::new();
    while let Some(w) = it.next() {
        match &w.to_ascii_lowercase()[..] {
            b"identifier" => identifier = it.next(),
            b"attribute" => name = it.next(),
            b"type" => kind = it.next(),
            _ => rest.push(w),
        }
    }
    let identifier = identifier.ok_or("an attribute without identifier")?;
    let kind = kind.ok_or("an attribute without type")?;
    out.push(identifier.clone());
    if let Some(name) = name.filter(|n| *n != identifier) {
        out.push(Bytes::from_static(b"AS"));
        out.push(name);
    }
    out.push(kind.clone());
    if kind.eq_ignore_ascii_case(b"VECTOR") {
        let mut algorithm = None;
        let mut params = Vec::new();
        let mut it = rest.into_iter();
        while let Some(k) = it.next() {
            let v = it.next().ok_or("a VECTOR option without value")?;
            if k.eq_ignore_ascii_case(b"algorithm") {
                algorithm = Some(v);
            } else if let Some((_, opt)) = VECTOR_PARAMS
                .iter()
                .find(|(info, _)| k.eq_ignore_ascii_case(info.as_bytes()))
            {
                params.push(Bytes::from_static(opt.as_bytes()));
                params.push(v);
            } else {
                return Err(format!(
                    "VECTOR option {} is not known",
                    String::from_utf8_lossy(&k)
                ));
            }
        }
        out.push(algorithm.ok_or("a VECTOR field without algorithm")?);
        out.push(Bytes::from(params.len().to_string()));
        out.extend(params);
        return Ok(());
    }
    let mut it = rest.into_iter();
    while let Some(w) = it.next() {
        if w.eq_ignore_ascii_case(b"coord_system") {
            // GEOSHAPE: `coord_system SPHERICAL` is written as `SPHERICAL`.
            out.extend(it.next());
        } else if w.eq_ignore_ascii_case(b"UNF") && kind.eq_ignore_ascii_case(b"NUMERIC") {
            // Implied for NUMERIC SORTABLE; shown by FT.INFO, refused by some versions.
        } else {
            out.push(w);
        }
    }
    Ok(())
}

/// The commands that recreate the index `FT.INFO` describes (`syndump`: its `FT.SYNDUMP`).
pub(crate) fn plan(info: &Frame, syndump: Option<&Frame>) -> Result<IndexPlan, String> {
    let name = field(info, "index_name")
        .and_then(text)
        .ok_or("FT.INFO has no index_name")?;
    let def = field(info, "index_definition").ok_or("FT.INFO has no index_definition")?;
    let b = |s: &'static str| Bytes::from_static(s.as_bytes());
    let mut create = vec![b("FT.CREATE"), name.clone()];
    if let Some(t) = field(def, "key_type").and_then(text) {
        create.push(b("ON"));
        create.push(t);
    }
    if let Some(p) = field(def, "prefixes") {
        let p = words(p);
        // An index over every key shows the one prefix "".
        if !(p.len() == 1 && p[0].is_empty()) {
            create.push(b("PREFIX"));
            create.push(Bytes::from(p.len().to_string()));
            create.extend(p);
        }
    }
    for (info_name, option) in [
        ("filter", "FILTER"),
        ("default_language", "LANGUAGE"),
        ("language_field", "LANGUAGE_FIELD"),
        ("default_score", "SCORE"),
        ("score_field", "SCORE_FIELD"),
        ("payload_field", "PAYLOAD_FIELD"),
    ] {
        if let Some(v) = field(def, info_name).and_then(text) {
            create.push(b(option));
            create.push(v);
        }
    }
    if let Some(opts) = field(info, "index_options") {
        create.extend(words(opts));
    }
    if let Some(stop) = field(info, "stopwords_list") {
        let stop = words(stop);
        create.push(b("STOPWORDS"));
        create.push(Bytes::from(stop.len().to_string()));
        create.extend(stop);
    }
    create.push(b("SCHEMA"));
    let attrs = field(info, "attributes")
        .and_then(Frame::as_slice)
        .ok_or("FT.INFO has no attributes")?;
    if attrs.is_empty() {
        return Err("an index without attributes".into());
    }
    for a in attrs {
        attribute(a, &mut create)?;
    }
    let mut synonyms = Vec::new();
    if let Some(dump) = syndump {
        // `[term, [group, ...], ...]`: regrouped as group -> terms.
        let mut groups: Vec<(Bytes, Vec<Bytes>)> = Vec::new();
        for (term, ids) in pairs(dump) {
            for id in words(ids) {
                match groups.iter_mut().find(|(g, _)| *g == id) {
                    Some((_, terms)) => terms.push(Bytes::copy_from_slice(term)),
                    None => groups.push((id, vec![Bytes::copy_from_slice(term)])),
                }
            }
        }
        for (id, terms) in groups {
            let mut cmd = vec![b("FT.SYNUPDATE"), name.clone(), id];
            cmd.extend(terms);
            synonyms.push(cmd);
        }
    }
    Ok(IndexPlan {
        name,
        create,
        synonyms,
    })
}

/// The parts of `FT.INFO` that describe the definition (not its statistics), to compare
/// the target's recreated index with the source's.
pub(crate) fn definition(info: &Frame) -> Vec<(Vec<u8>, Frame)> {
    [
        "index_options",
        "index_definition",
        "attributes",
        "stopwords_list",
    ]
    .iter()
    .filter_map(|n| field(info, n).map(|f| (n.as_bytes().to_vec(), f.clone())))
    .collect()
}

/// For the `server_replies` fuzz target: any RESP input, decoded and read as `FT.INFO`
/// and `FT.SYNDUMP` replies, gives a plan or an error, never a panic; a plan starts with
/// `FT.CREATE name` and has a `SCHEMA`.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_plan_input(input: &[u8]) {
    let mut buf = bytes::BytesMut::from(input);
    let mut decoder = resp_codec::FrameDecoder::default();
    let mut frames = Vec::new();
    while let Ok(Some((f, _))) = decoder.decode(&mut buf) {
        frames.push(f);
        if frames.len() == 2 {
            break;
        }
    }
    let Some(info) = frames.first() else {
        return;
    };
    if let Ok(p) = plan(info, frames.get(1)) {
        assert_eq!(&p.create[0][..], b"FT.CREATE");
        assert_eq!(p.create[1], p.name);
        assert!(p.create.iter().any(|a| &a[..] == b"SCHEMA"));
        for s in &p.synonyms {
            assert!(s.len() >= 4, "a synonym group has a term");
        }
    }
    let _ = definition(info);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Frame {
        Frame::bulk(v.to_string())
    }
    fn arr(v: Vec<Frame>) -> Frame {
        Frame::Array(v)
    }
    fn text_of(cmd: &[Bytes]) -> String {
        cmd.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// What Redis Stack 7.4.1 answers for a JSON index with every kind of field.
    fn info() -> Frame {
        arr(vec![
            s("index_name"),
            s("idx2"),
            s("index_options"),
            arr(vec![s("NOOFFSETS")]),
            s("index_definition"),
            arr(vec![
                s("key_type"),
                s("JSON"),
                s("prefixes"),
                arr(vec![s("j:"), s("k:")]),
                s("filter"),
                s("@n>0"),
                s("default_score"),
                s("0.5"),
            ]),
            s("attributes"),
            arr(vec![
                arr(vec![
                    s("identifier"),
                    s("$.title"),
                    s("attribute"),
                    s("title"),
                    s("type"),
                    s("TEXT"),
                    s("WEIGHT"),
                    s("2"),
                    s("NOSTEM"),
                ]),
                arr(vec![
                    s("identifier"),
                    s("$.n"),
                    s("attribute"),
                    s("n"),
                    s("type"),
                    s("NUMERIC"),
                    s("SORTABLE"),
                    s("UNF"),
                ]),
                arr(vec![
                    s("identifier"),
                    s("$.v"),
                    s("attribute"),
                    s("v"),
                    s("type"),
                    s("VECTOR"),
                    s("algorithm"),
                    s("FLAT"),
                    s("data_type"),
                    s("FLOAT32"),
                    s("dim"),
                    Frame::Integer(2),
                    s("distance_metric"),
                    s("L2"),
                ]),
                arr(vec![
                    s("identifier"),
                    s("g"),
                    s("attribute"),
                    s("g"),
                    s("type"),
                    s("GEOSHAPE"),
                    s("coord_system"),
                    s("SPHERICAL"),
                ]),
            ]),
            s("num_docs"),
            s("0"),
            s("stopwords_list"),
            arr(vec![s("bar"), s("foo")]),
        ])
    }

    #[test]
    fn ft_create_from_ft_info() {
        let dump = arr(vec![
            s("car"),
            arr(vec![s("g1")]),
            s("auto"),
            arr(vec![s("g1"), s("g2")]),
        ]);
        let p = plan(&info(), Some(&dump)).unwrap();
        assert_eq!(
            text_of(&p.create),
            "FT.CREATE idx2 ON JSON PREFIX 2 j: k: FILTER @n>0 SCORE 0.5 NOOFFSETS \
             STOPWORDS 2 bar foo SCHEMA $.title AS title TEXT WEIGHT 2 NOSTEM \
             $.n AS n NUMERIC SORTABLE $.v AS v VECTOR FLAT 6 TYPE FLOAT32 DIM 2 \
             DISTANCE_METRIC L2 g GEOSHAPE SPHERICAL"
        );
        let syn: Vec<String> = p.synonyms.iter().map(|c| text_of(c)).collect();
        assert_eq!(
            syn,
            ["FT.SYNUPDATE idx2 g1 car auto", "FT.SYNUPDATE idx2 g2 auto"]
        );
        assert_eq!(definition(&info()).len(), 4);
    }

    #[test]
    fn arbitrary_replies_never_panic() {
        let mut wire = bytes::BytesMut::new();
        resp_codec::encode_command(&mut wire, &["index_name", "x", "attributes"]);
        for cut in 0..wire.len() {
            check_plan_input(&wire[..cut]);
        }
        check_plan_input(b"*4\r\n$10\r\nindex_name\r\n:1\r\n$10\r\nattributes\r\n*1\r\n*2\r\n$4\r\ntype\r\n$6\r\nVECTOR\r\n");
        check_plan_input(b"%1\r\n+index_name\r\n_\r\n");
    }

    #[test]
    fn bad_info_is_an_error_not_a_panic() {
        assert!(plan(&Frame::Integer(1), None).is_err());
        assert!(plan(&arr(vec![s("index_name"), s("x")]), None).is_err());
        let no_type = arr(vec![
            s("index_name"),
            s("x"),
            s("index_definition"),
            arr(vec![]),
            s("attributes"),
            arr(vec![arr(vec![s("identifier"), s("a")])]),
        ]);
        assert!(plan(&no_type, None).unwrap_err().contains("without type"));
    }
}
