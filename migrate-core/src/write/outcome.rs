//! [`Outcome`]: what became of one command; [`Resolved`]: outcomes with the applied
//! compact commands counted in runs.

use std::fmt;

use crate::write::{ServerError, Tag};

/// What became of one command given to the writer.
///
/// Every command the writer accepted gets exactly one outcome, in the order the commands
/// were accepted, including when the connection fails: then the commands whose replies never
/// arrived are [`Lost`](Outcome::Lost), never dropped silently.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The target executed the command and answered something other than an error (inside
    /// a transaction: `EXEC`'s reply held a non-error result for it).
    Applied(Tag),
    /// The target answered an error: a refusal (`WRONGTYPE`, `OOM`, `BUSYKEY`), a queueing
    /// error inside a transaction, or, for the other commands of an aborted transaction, the
    /// abort itself (`EXECABORT`). The command was not applied.
    Failed {
        /// The command.
        tag: Tag,
        /// The error reply that concerns it.
        reply: ServerError,
    },
    /// The caller discarded the transaction the command was queued in; it was not applied.
    Discarded(Tag),
    /// The connection failed before the command's reply arrived.
    Lost {
        /// The command.
        tag: Tag,
        /// `false` when the command certainly was not applied (it was never completely
        /// written, or it was queued in a transaction whose `EXEC` was never completely
        /// written); `true` when the target may have executed it before the connection
        /// failed. A resuming migration must re-apply it either way, and idempotently when
        /// this is `true`.
        maybe_applied: bool,
    },
}

impl Outcome {
    /// The command's tag.
    pub fn tag(&self) -> &Tag {
        match self {
            Outcome::Applied(tag)
            | Outcome::Failed { tag, .. }
            | Outcome::Discarded(tag)
            | Outcome::Lost { tag, .. } => tag,
        }
    }

    /// Takes the tag.
    pub fn into_tag(self) -> Tag {
        match self {
            Outcome::Applied(tag)
            | Outcome::Failed { tag, .. }
            | Outcome::Discarded(tag)
            | Outcome::Lost { tag, .. } => tag,
        }
    }

    /// `true` for [`Applied`](Outcome::Applied).
    pub fn is_applied(&self) -> bool {
        matches!(self, Outcome::Applied(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Applied(tag) => write!(f, "{tag}: applied"),
            Outcome::Failed { tag, reply } => write!(f, "{tag}: failed: {reply}"),
            Outcome::Discarded(tag) => write!(f, "{tag}: discarded with its transaction"),
            Outcome::Lost {
                tag,
                maybe_applied: true,
            } => write!(
                f,
                "{tag}: connection lost before the reply (may have been applied)"
            ),
            Outcome::Lost {
                tag,
                maybe_applied: false,
            } => write!(f, "{tag}: connection lost before it was sent (not applied)"),
        }
    }
}

/// What the writer resolved, in acceptance order, as
/// [`Pipeline::poll_resolved`](crate::Pipeline::poll_resolved) hands it out: consecutive
/// applied commands queued without a tag ([`Pipeline::push_compact`](crate::Pipeline::push_compact))
/// are counted in one run, every other command has its own [`Outcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolved {
    /// `commands` consecutive compact commands were applied; `up_to` is the `seq` of the
    /// last one (for a replication stream: the target has everything up to that offset).
    Applied {
        /// How many.
        commands: u64,
        /// The `seq` of the last.
        up_to: u64,
    },
    /// One command's outcome: any command queued with a [`Tag`], and a compact command that
    /// was not applied (its tag rebuilt from what the writer kept: db, name, key, seq).
    One(Outcome),
}
