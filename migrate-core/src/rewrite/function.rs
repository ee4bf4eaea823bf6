//! Function libraries: `FUNCTION LOAD [REPLACE] code`.

use bytes::{Bytes, BytesMut};
use rdb_parser::Function;

use super::{Cmd, Env, FunctionReport, FunctionStatus, Out, Scope};

/// Emits the `FUNCTION LOAD` for a library (7.0+ targets).
///
/// The Redis 7.0 RC format (opcode 246) kept name and engine apart from the code; its code
/// gets the GA `#!<engine> name=<name>` line in front (best effort: RC libraries used the
/// same `redis.register_function` API).
pub(crate) fn load(env: &Env, f: &Function, out: Out<'_>) -> FunctionReport {
    let code = if f.pre_ga {
        let mut c = BytesMut::new();
        c.extend_from_slice(b"#!");
        let engine = f.engine.as_deref().unwrap_or(b"lua").to_ascii_lowercase();
        c.extend_from_slice(&engine);
        if let Some(name) = &f.name {
            c.extend_from_slice(b" name=");
            c.extend_from_slice(name);
        }
        c.extend_from_slice(b"\n");
        c.extend_from_slice(&f.code);
        c.freeze()
    } else {
        f.code.clone()
    };
    let name = f.name.clone().or_else(|| library_name(&code));
    if !env.at_least(7, 0) {
        return FunctionReport {
            name,
            status: FunctionStatus::Unsupported,
        };
    }
    let mut args = vec![Bytes::from_static(b"FUNCTION"), Bytes::from_static(b"LOAD")];
    if env.opts.replace {
        args.push(Bytes::from_static(b"REPLACE"));
    }
    args.push(code);
    out(Cmd::new(Scope::Server, args));
    FunctionReport {
        name,
        status: FunctionStatus::Loaded,
    }
}

/// The `name=` of the first line (`#!lua name=mylib`).
fn library_name(code: &Bytes) -> Option<Bytes> {
    let line_end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let line = &code[..line_end];
    if !line.starts_with(b"#!") {
        return None;
    }
    line.split(|&b| b == b' ')
        .find_map(|w| w.strip_prefix(b"name="))
        .map(|n| code.slice_ref(n.strip_suffix(b"\r").unwrap_or(n)))
}
