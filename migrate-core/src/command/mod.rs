//! Replicated commands: where their keys are, and how they translate for the target.

mod keys;
mod translate;

pub use keys::{key_indexes, key_spec, KeySpec};
pub use translate::{TargetCommand, TranslateOptions, Translated, Translator, Unit};
