//! The CLI's error: one line for the user, and an exit status.

use std::fmt;
use std::path::Path;

/// An error that ends the command.
#[derive(Debug)]
pub(crate) struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// A failure with the input or the work itself (exit status 1).
    pub(crate) fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
        }
    }

    /// A failure about a file: `<file>: <error>`.
    pub(crate) fn file(path: &Path, err: impl fmt::Display) -> CliError {
        CliError::new(format!("{}: {err}", path.display()))
    }

    /// The reader of our output went away (`| head`): stop quietly, like other filters do.
    pub(crate) fn broken_pipe() -> CliError {
        CliError {
            message: String::new(),
            code: 0,
        }
    }

    /// Whether there is nothing to print.
    pub(crate) fn is_silent(&self) -> bool {
        self.message.is_empty()
    }

    /// An output error: a broken pipe is a quiet stop, anything else `<name>: <error>`.
    pub(crate) fn output(name: &str, e: std::io::Error) -> CliError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::broken_pipe()
        } else {
            CliError::new(format!("{name}: {e}"))
        }
    }

    /// A bad argument (exit status 2, like clap's usage errors).
    pub(crate) fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 2,
        }
    }

    pub(crate) fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always one line.
        f.write_str(&self.message.replace(['\n', '\r'], " "))
    }
}
