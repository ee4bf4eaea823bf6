//! The tokio driver: a [`Pipeline`] over any `AsyncRead + AsyncWrite` stream.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use resp_codec::FrameDecoder;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::write::{LowWater, Outcome, Pipeline, Resolved, Tag, WriterOptions};

/// Read buffer growth step.
const READ_CHUNK: usize = 64 << 10;
/// Spare capacity below which the read buffer grows before a read.
const MIN_READ_SPACE: usize = 4 << 10;

/// What an I/O round waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Goal {
    /// The window has room (or the pipeline stopped).
    Room,
    /// Buffered output fell below the batch size.
    BatchWritten,
    /// An outcome is ready (or none can come without more commands).
    Outcome,
    /// Everything queued written (replies not waited for).
    Written,
    /// Everything written and every expected reply read.
    Drained,
}

/// A pipelined, windowed writer to one target connection.
///
/// It drives a [`Pipeline`] over a stream the caller connected (a `TcpStream`, a TLS stream,
/// anything `AsyncRead + AsyncWrite + Unpin`; see [`Target`](crate::Target) for the
/// handshake). It runs inline, in the caller's task, with no background task: each call
/// writes buffered commands and reads replies concurrently (so a large write cannot deadlock
/// against the server's replies) until its own condition holds.
///
/// - [`send`](Self::send) / [`send_bytes`](Self::send_bytes) wait for room in the window,
///   then queue the command; output is written once [`WriterOptions::write_batch_bytes`]
///   accumulate, or by any call that waits. Call [`flush`](Self::flush) when the input goes
///   idle so that the last commands are not left in the buffer.
/// - outcomes come in acceptance order from [`try_next_outcome`](Self::try_next_outcome)
///   (those already read) and [`next_outcome`](Self::next_outcome) (waits for one). Drain
///   them as you go: they are kept until taken.
/// - on failure (connection lost or closed, target out of memory, a reply out of step) the
///   error is returned by the call that met it and by every later call, *after*
///   [`next_outcome`](Self::next_outcome) has handed out the remaining outcomes: every
///   accepted command gets one, [`Lost`](Outcome::Lost) for those whose reply never came.
///
/// All methods are cancel-safe: dropping a pending call loses nothing (its progress is kept in
/// the pipeline) and the next call continues. The writer sets no timeouts of its own: wrap
/// calls in `tokio::time::timeout` to bound how long a stalled target may hold them.
///
/// ```no_run
/// use migrate_core::{Outcome, Tag, Target, TargetOptions};
///
/// # async fn demo() -> Result<(), migrate_core::Error> {
/// let target = Target::connect("127.0.0.1:6379", &TargetOptions::default()).await?;
/// let options = target.writer_options();
/// let mut writer = target.into_writer(options);
/// for i in 0..10_000u64 {
///     let key = format!("key:{i}");
///     writer.send(Tag::new(Some(0), "SET", i).with_key(key.clone()), &["SET", &key, "v"]).await?;
///     while let Some(outcome) = writer.try_next_outcome() {
///         if let Outcome::Failed { tag, reply } = outcome {
///             eprintln!("{tag}: {reply}");
///         }
///     }
/// }
/// writer.flush().await?;
/// while let Some(outcome) = writer.next_outcome().await? {
///     assert!(outcome.is_applied(), "{outcome}");
/// }
/// writer.shutdown().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Writer<S> {
    stream: S,
    pipeline: Pipeline,
    read_buf: BytesMut,
    decoder: FrameDecoder,
    needs_flush: bool,
    write_error: Option<io::Error>,
    /// The socket's receive low-water mark, when the stream is plain TCP.
    low_water: Option<LowWater>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Writer<S> {
    /// A writer over a connected (and authenticated) stream; the connection's db is not
    /// assumed (the first command with a db gets a `SELECT`).
    pub fn new(stream: S, options: WriterOptions) -> Writer<S> {
        Writer::from_pipeline(stream, Pipeline::new(options))
    }

    /// A writer driving a pipeline prepared by the caller (e.g. after
    /// [`Pipeline::assume_db`]).
    pub fn from_pipeline(stream: S, pipeline: Pipeline) -> Writer<S> {
        Writer {
            stream,
            pipeline,
            read_buf: BytesMut::new(),
            decoder: FrameDecoder::default(),
            needs_flush: false,
            write_error: None,
            low_water: None,
        }
    }

    /// Queues a command (arguments copied), after waiting for room in the window.
    ///
    /// # Errors
    /// As [`Pipeline::push`]; and the writer's error once it failed or stopped. On error the
    /// command was not accepted (it gets no outcome).
    pub async fn send<A: AsRef<[u8]>>(&mut self, tag: Tag, args: &[A]) -> Result<(), Error> {
        self.wait_room().await?;
        self.pipeline.push(tag, args)?;
        self.after_push().await
    }

    /// Queues a command given as [`Bytes`] (big arguments sent without a copy, see
    /// [`Pipeline::push_bytes`]), after waiting for room in the window. Errors as
    /// [`send`](Self::send).
    pub async fn send_bytes(&mut self, tag: Tag, args: &[Bytes]) -> Result<(), Error> {
        self.wait_room().await?;
        self.pipeline.push_bytes(tag, args)?;
        self.after_push().await
    }

    /// Queues a command without a [`Tag`] (see [`Pipeline::push_compact`]: applied commands
    /// are only counted, a failed one gets its tag rebuilt from `db`, its name, `key` and
    /// `seq`), after waiting for room in the window. Take its outcomes with
    /// [`try_next_resolved`](Self::try_next_resolved). Errors as [`send`](Self::send).
    pub async fn send_compact(
        &mut self,
        db: Option<u32>,
        seq: u64,
        key: Option<&[u8]>,
        args: &[Bytes],
    ) -> Result<(), Error> {
        self.wait_room().await?;
        self.pipeline.push_compact(db, seq, key, args)?;
        self.after_push().await
    }

    /// [`send_compact`](Self::send_compact) when that needs no I/O (the window has room and
    /// less than a write batch waits to be written): no future, no wait. `Ok(false)`:
    /// nothing queued (send it with `send_compact`). Errors as [`send`](Self::send).
    pub fn try_push_compact(
        &mut self,
        db: Option<u32>,
        seq: u64,
        key: Option<&[u8]>,
        args: &[Bytes],
    ) -> Result<bool, Error> {
        if !self.takes_without_io()? {
            return Ok(false);
        }
        self.pipeline.push_compact(db, seq, key, args)?;
        Ok(true)
    }

    /// Queues a `RESTORE` the planner lent as [`Pipeline::push_compact_restore`] when that
    /// needs no I/O (as [`try_push_compact`](Self::try_push_compact)).
    /// `Ok(false)`: nothing queued.
    pub fn try_push_compact_restore(
        &mut self,
        seq: u64,
        cmd: &crate::plan::RestoreCmd<'_>,
    ) -> Result<bool, Error> {
        if !self.takes_without_io()? {
            return Ok(false);
        }
        self.pipeline.push_compact_restore(seq, cmd)?;
        Ok(true)
    }

    /// Whether a command can be queued without I/O: the window has room and less than a
    /// write batch waits to be written (the writer's error once it failed).
    fn takes_without_io(&self) -> Result<bool, Error> {
        let p = &self.pipeline;
        if let Some(e) = p.error() {
            return Err(e.clone());
        }
        Ok(p.has_room() && p.pending_output() < p.options().write_batch_bytes)
    }

    /// Opens a transaction; see [`Pipeline::multi`].
    pub fn multi(&mut self) -> Result<(), Error> {
        self.pipeline.multi()
    }

    /// Closes the open transaction with `EXEC`; see [`Pipeline::exec`].
    pub fn exec(&mut self) -> Result<(), Error> {
        self.pipeline.exec()
    }

    /// Abandons the open transaction with `DISCARD`; see [`Pipeline::discard`].
    pub fn discard(&mut self) -> Result<(), Error> {
        self.pipeline.discard()
    }

    /// The next outcome already known, without waiting.
    pub fn try_next_outcome(&mut self) -> Option<Outcome> {
        self.pipeline.poll_outcome()
    }

    /// What was resolved next, without waiting: a run of applied compact commands, or one
    /// [`Outcome`] (see [`Pipeline::poll_resolved`]).
    pub fn try_next_resolved(&mut self) -> Option<Resolved> {
        self.pipeline.poll_resolved()
    }

    /// The next outcome, waiting for its reply when needed.
    ///
    /// Returns `Ok(None)` when every accepted command has its outcome (commands of an open
    /// transaction wait for [`exec`](Self::exec)), and the writer's error once the outcomes
    /// are exhausted after a failure.
    pub async fn next_outcome(&mut self) -> Result<Option<Outcome>, Error> {
        loop {
            if let Some(outcome) = self.pipeline.poll_outcome() {
                return Ok(Some(outcome));
            }
            if self.pipeline.awaiting_replies() == 0 {
                return match self.pipeline.error() {
                    Some(e) => Err(e.clone()),
                    None => Ok(None),
                };
            }
            self.io(Goal::Outcome).await;
        }
    }

    /// Writes everything queued and waits until every reply has been read and checked (the
    /// outcomes are then ready for [`try_next_outcome`](Self::try_next_outcome)).
    ///
    /// # Errors
    /// The writer's error, if it failed or stopped (the outcomes are still delivered).
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.io(Goal::Drained).await;
        match self.pipeline.error() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Writes everything queued (reading the replies that arrive meanwhile) without waiting
    /// for the replies still due: for a caller whose input paused, so that its last commands
    /// reach the server now rather than with the next batch.
    ///
    /// # Errors
    /// The writer's error, if it failed or stopped.
    pub async fn write_queued(&mut self) -> Result<(), Error> {
        self.io(Goal::Written).await;
        match self.pipeline.error() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// [`flush`](Self::flush)es, then shuts the stream's write side down (the target then
    /// closes the connection). Outcomes remain available.
    pub async fn shutdown(&mut self) -> Result<(), Error> {
        let flushed = self.flush().await;
        let shut = poll_fn(|cx| Pin::new(&mut self.stream).poll_shutdown(cx)).await;
        flushed?;
        shut.map_err(|e| Error::ConnectionLost {
            in_flight: 0,
            source: Arc::new(e),
        })
    }

    /// The pipeline (window state, db, counters).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, back (with any unread reply bytes lost; the socket's low-water mark back
    /// to the kernel's default).
    pub fn into_inner(mut self) -> S {
        if let Some(lw) = &mut self.low_water {
            lw.clear();
        }
        self.stream
    }

    /// Reads replies in batches through the receive low-water mark of the writer's socket
    /// (see [`LowWater`]): fewer wakes for the same replies. `lw` must be the mark of this
    /// writer's own plain TCP stream ([`LowWater::of`]); the writer never waits with a mark
    /// that the replies due cannot reach. [`Target::into_writer`](crate::Target::into_writer)
    /// sets it for a target reached over plain TCP; `None` turns it off (the socket's mark
    /// back to the kernel's default), e.g. before sending blocking commands.
    pub fn set_low_water(&mut self, lw: Option<LowWater>) {
        if let Some(old) = &mut self.low_water {
            old.clear();
        }
        self.low_water = lw;
    }

    async fn wait_room(&mut self) -> Result<(), Error> {
        if !self.pipeline.has_room() && self.pipeline.error().is_none() {
            self.io(Goal::Room).await;
        }
        match self.pipeline.error() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    async fn after_push(&mut self) -> Result<(), Error> {
        if self.pipeline.pending_output() >= self.pipeline.options().write_batch_bytes {
            self.io(Goal::BatchWritten).await;
            if self.pipeline.is_broken() {
                if let Some(e) = self.pipeline.error() {
                    return Err(e.clone());
                }
            }
        }
        // The command was accepted: an error that stopped the pipeline meanwhile is
        // returned by the next call, once this command's outcome can be collected.
        Ok(())
    }

    fn reached(&self, goal: Goal) -> bool {
        let p = &self.pipeline;
        if p.is_broken() {
            return true;
        }
        match goal {
            Goal::Room => p.has_room() || p.error().is_some(),
            Goal::BatchWritten => p.pending_output() < p.options().write_batch_bytes,
            Goal::Outcome => p.ready_outcomes() > 0 || p.awaiting_replies() == 0,
            Goal::Written => p.pending_output() == 0 && !self.needs_flush,
            Goal::Drained => p.is_idle() && !self.needs_flush,
        }
    }

    async fn io(&mut self, goal: Goal) {
        poll_fn(|cx| self.poll_io(cx, goal)).await
    }

    /// Writes and reads until `goal` is reached; failures end up in the pipeline.
    fn poll_io(&mut self, cx: &mut Context<'_>, goal: Goal) -> Poll<()> {
        loop {
            if self.reached(goal) {
                return Poll::Ready(());
            }
            let mut progress = false;
            if self.write_error.is_none() {
                progress |= self.poll_write_side(cx);
            }
            if self.pipeline.awaiting_replies() > 0 {
                // After a write error, read what already arrived, then give up.
                loop {
                    match self.poll_read_side(cx) {
                        Poll::Ready(true) => progress = true,
                        Poll::Ready(false) => return Poll::Ready(()),
                        Poll::Pending => break,
                    }
                    if self.write_error.is_none() || self.pipeline.awaiting_replies() == 0 {
                        break;
                    }
                }
            }
            if self.write_error.is_some() && !self.pipeline.is_broken() {
                self.connection_failed(None);
                return Poll::Ready(());
            }
            if !progress {
                if let Some(lw) = &mut self.low_water {
                    // Woken once the replies can bring the mark (a writer waiting for one
                    // outcome wants the first reply).
                    let p = &self.pipeline;
                    let mark = match goal {
                        Goal::Outcome => 1,
                        _ => LowWater::mark_for(
                            p.awaiting_replies(),
                            p.pending_output(),
                            p.options().max_in_flight,
                        ),
                    };
                    lw.set(mark);
                }
                return Poll::Pending;
            }
        }
    }

    /// Writes buffered output; returns whether anything happened.
    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while let Some(chunk) = self.pipeline.transmit() {
            match Pin::new(&mut self.stream).poll_write(cx, chunk) {
                Poll::Ready(Ok(0)) => {
                    self.write_error = Some(io::ErrorKind::WriteZero.into());
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    self.pipeline.advance_transmit(n);
                    self.needs_flush = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.write_error = Some(e);
                    return true;
                }
                Poll::Pending => return progress,
            }
        }
        if self.needs_flush {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.needs_flush = false;
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.write_error = Some(e);
                    progress = true;
                }
                Poll::Pending => {}
            }
        }
        progress
    }

    /// Reads once and processes every complete reply. `Ready(true)`: progress;
    /// `Ready(false)`: the pipeline is now broken.
    fn poll_read_side(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.read_buf.capacity() - self.read_buf.len() < MIN_READ_SPACE {
            self.read_buf.reserve(READ_CHUNK);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read_buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(0)) => {
                self.connection_failed(None);
                Poll::Ready(false)
            }
            Poll::Ready(Ok(_)) => loop {
                // `EXEC`'s reply to a batch of writes: counted, no frame per element.
                if self.read_buf.first() == Some(&b'*') && self.pipeline.takes_plain_array() {
                    if let Some((len, _)) = self.decoder.skip_plain_array(&mut self.read_buf) {
                        if self.pipeline.handle_plain_array(len).is_err() {
                            return Poll::Ready(false);
                        }
                        continue;
                    }
                }
                match self.decoder.decode(&mut self.read_buf) {
                    Ok(Some((frame, _))) => {
                        if self.pipeline.handle_reply(frame).is_err() {
                            return Poll::Ready(false);
                        }
                    }
                    Ok(None) => return Poll::Ready(true),
                    Err(e) => {
                        self.pipeline.abort(e.into());
                        return Poll::Ready(false);
                    }
                }
            },
            Poll::Ready(Err(e)) => {
                self.connection_failed(Some(e));
                Poll::Ready(false)
            }
        }
    }

    fn connection_failed(&mut self, read_error: Option<io::Error>) {
        let in_flight = self.pipeline.unresolved();
        let error = match self.write_error.take().or(read_error) {
            Some(e) => Error::ConnectionLost {
                in_flight,
                source: Arc::new(e),
            },
            None => Error::ConnectionClosed { in_flight },
        };
        self.pipeline.abort(error);
    }
}
