//! Which module provides an RDB module type, so that a module value bound for a target
//! without that module is known before it is written.
//!
//! RDB files name module data by a 9-character type name (`ReJSON-RL`, `MBbloom--`, ...);
//! `MODULE LIST` names modules (`ReJSON`, `bf`, ...). The table maps one to the other for the
//! modules of Redis Stack and the Valkey bundle; a type it does not know is left to the
//! target to accept or refuse.

/// One module: the name shown to people, the names `MODULE LIST` may use for it, and the
/// RDB type names (values and auxiliary data) it writes.
struct Known {
    display: &'static str,
    list_names: &'static [&'static str],
    types: &'static [&'static str],
}

const KNOWN: &[Known] = &[
    Known {
        display: "ReJSON",
        // RedisJSON, and valkey-json (same type name).
        list_names: &["ReJSON", "json"],
        types: &["ReJSON-RL"],
    },
    Known {
        display: "bf",
        // RedisBloom (bloom, cuckoo, top-k, count-min, t-digest); valkey-bloom's type.
        list_names: &["bf", "bloom"],
        types: &[
            "MBbloom--",
            "MBbloomCF",
            "TopK-TYPE",
            "CMSk-TYPE",
            "TDIS-TYPE",
            "bloomfltr",
        ],
    },
    Known {
        display: "timeseries",
        list_names: &["timeseries"],
        types: &["TSDB-TYPE"],
    },
    Known {
        display: "search",
        // RediSearch keeps its index definitions (ft_index0) and suggestion / spell-check
        // dictionaries (scdtype00, ft_invidx, ...) in module data.
        list_names: &["search", "ft"],
        types: &[
            "ft_index0",
            "ft_invidx",
            "scdtype00",
            "ft_sugdx",
            "ft_numidx",
        ],
    },
    Known {
        display: "graph",
        list_names: &["graph"],
        types: &["graphdata"],
    },
];

fn known(type_name: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|m| m.types.contains(&type_name))
}

/// The module (as `MODULE LIST` names it) that writes RDB module type `type_name`, when
/// the table knows it: `module_for_type("ReJSON-RL") == Some("ReJSON")`.
pub fn module_for_type(type_name: &str) -> Option<&'static str> {
    known(type_name).map(|m| m.display)
}

/// Whether the modules in `loaded` (names from `MODULE LIST`) provide `type_name`.
/// `None` when the table does not know the type.
pub fn provides_type(loaded: &[String], type_name: &str) -> Option<bool> {
    let m = known(type_name)?;
    Some(
        loaded
            .iter()
            .any(|l| m.list_names.iter().any(|n| n.eq_ignore_ascii_case(l))),
    )
}

/// Whether `name` (from the source's `MODULE LIST`) is among `loaded` (the target's),
/// counting the known aliases of one module (`ReJSON` and `json`) as the same.
pub fn module_loaded(loaded: &[String], name: &str) -> bool {
    let aliases: &[&str] = KNOWN
        .iter()
        .find(|m| m.list_names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        .map_or(&[], |m| m.list_names);
    loaded
        .iter()
        .any(|l| l.eq_ignore_ascii_case(name) || aliases.iter().any(|a| a.eq_ignore_ascii_case(l)))
}

/// Command prefixes of the known modules: (prefix, module, why a target without it
/// refuses the command).
const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "JSON.",
        "ReJSON",
        "module ReJSON is not loaded on the target",
    ),
    ("BF.", "bf", "module bf is not loaded on the target"),
    ("CF.", "bf", "module bf is not loaded on the target"),
    ("TOPK.", "bf", "module bf is not loaded on the target"),
    ("CMS.", "bf", "module bf is not loaded on the target"),
    ("TDIGEST.", "bf", "module bf is not loaded on the target"),
    (
        "TS.",
        "timeseries",
        "module timeseries is not loaded on the target",
    ),
    ("FT.", "search", "module search is not loaded on the target"),
    (
        "GRAPH.",
        "graph",
        "module graph is not loaded on the target",
    ),
];

/// The module a command belongs to (by its prefix, `JSON.SET` → `ReJSON`), with the reason
/// a target without that module refuses it.
pub fn command_module(name: &[u8]) -> Option<(&'static str, &'static str)> {
    COMMANDS
        .iter()
        .find(|(prefix, _, _)| {
            name.len() > prefix.len()
                && name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        })
        .map(|&(_, module, why)| (module, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_map_to_modules() {
        assert_eq!(module_for_type("ReJSON-RL"), Some("ReJSON"));
        assert_eq!(module_for_type("TopK-TYPE"), Some("bf"));
        assert_eq!(module_for_type("TSDB-TYPE"), Some("timeseries"));
        assert_eq!(module_for_type("ft_index0"), Some("search"));
        assert_eq!(module_for_type("unknown00"), None);
        let stack: Vec<String> = ["search", "timeseries", "bf", "ReJSON"]
            .map(String::from)
            .to_vec();
        assert_eq!(provides_type(&stack, "MBbloomCF"), Some(true));
        assert_eq!(provides_type(&[], "MBbloomCF"), Some(false));
        assert_eq!(provides_type(&["json".into()], "ReJSON-RL"), Some(true));
        assert_eq!(provides_type(&stack, "unknown00"), None);
        assert!(module_loaded(&["json".into()], "ReJSON"));
        assert!(!module_loaded(&["json".into()], "bf"));
        assert!(module_loaded(&stack, "search"));
        assert_eq!(command_module(b"json.set").map(|m| m.0), Some("ReJSON"));
        assert_eq!(command_module(b"TS.ADD").map(|m| m.0), Some("timeseries"));
        assert_eq!(command_module(b"TS."), None);
        assert_eq!(command_module(b"SET"), None);
    }
}
