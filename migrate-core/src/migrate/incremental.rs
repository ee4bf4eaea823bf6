//! The incremental phase: replicated commands through the [`Translator`] to the writer.

use replication_client::Command;

use super::apply::Applier;
use super::MigrationError;
use crate::command::{TranslateOptions, Translated, Translator};
use crate::{Filter, ServerVersion};

pub(crate) struct Incremental {
    translator: Translator,
    /// End offset of the last replicated command handed to the writer (or consumed).
    pub(crate) received_offset: u64,
}

impl Incremental {
    pub(crate) fn new(
        version: ServerVersion,
        filter: Filter,
        target_modules: Option<Vec<String>>,
    ) -> Incremental {
        let opts = TranslateOptions {
            target_modules,
            ..TranslateOptions::default()
        };
        Incremental {
            translator: Translator::new(version, filter, opts),
            received_offset: 0,
        }
    }

    /// Whether a `MULTI` is open (its commands are buffered until `EXEC`).
    pub(crate) fn in_transaction(&self) -> bool {
        self.translator.in_transaction()
    }

    /// Translates one replicated command and sends it where that needs no waiting (the
    /// common command: queued on a writer with room, or nothing to send), without a
    /// future; otherwise returns what is left to send, for [`Incremental::send`]. A
    /// transaction goes out as one `MULTI`/`EXEC` unit (inside a checkpointed batch, which
    /// is one already, as its commands); every command carries the source offset it ends
    /// at.
    pub(crate) fn command_now(
        &mut self,
        cmd: Command,
        ap: &mut Applier,
    ) -> Result<Option<Translated>, MigrationError> {
        let offset = cmd.end_offset;
        self.received_offset = offset;
        match self.translator.translate(cmd.db, cmd.args) {
            Translated::Nothing => {
                if !self.translator.in_transaction() && ap.is_idle() {
                    // Nothing in flight: the target is as far as the source.
                    ap.applied_offset = ap.applied_offset.max(offset);
                }
                Ok(None)
            }
            Translated::Unsupported {
                command,
                key,
                reason,
            } => {
                let r = ap.unsupported(
                    String::from_utf8_lossy(&command).to_ascii_uppercase(),
                    key,
                    reason.into(),
                );
                if ap.is_idle() {
                    ap.applied_offset = ap.applied_offset.max(offset);
                }
                r.map(|()| None)
            }
            Translated::Forward(c) if ap.try_send_command(c.db, offset, &c.args)? => Ok(None),
            other => Ok(Some(other)),
        }
    }

    /// Sends what [`Incremental::command_now`] left (it ends at the source offset of the
    /// last command given to it).
    pub(crate) async fn send(
        &mut self,
        left: Translated,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        let batched = ap.in_transaction();
        let offset = self.received_offset;
        match left {
            Translated::Forward(c) => ap.send_command(c.db, offset, &c.args).await,
            Translated::Apply(unit) => {
                if unit.atomic {
                    ap.atomic_unit(&unit.commands, offset).await?;
                }
                let wrap = unit.atomic && !batched;
                if wrap {
                    ap.multi()?;
                }
                for c in unit.commands {
                    ap.send_command(c.db, offset, &c.args).await?;
                }
                if wrap {
                    ap.exec()?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
