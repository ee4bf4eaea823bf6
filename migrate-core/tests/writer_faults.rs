//! The writer's driver against faults a real server does not produce: replies out of step,
//! invalid RESP, a reply cut by the connection closing; and a transport with a tiny buffer,
//! where writing without reading at the same time would deadlock.
//!
//! The "server" is the other end of an in-memory `tokio::io::duplex` pipe, decoding commands
//! with resp-codec and answering by script.

use bytes::{Bytes, BytesMut};
use migrate_core::{Error, Outcome, Tag, Writer, WriterOptions};
use resp_codec::FrameDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Runs a fake server on `end`: for each command received, `answer(index, name)` gives the
/// bytes to reply (`None`: close the connection).
fn fake_server(
    mut end: DuplexStream,
    answer: impl Fn(usize, &[u8]) -> Option<Vec<u8>> + Send + 'static,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut buf = BytesMut::new();
        let mut dec = FrameDecoder::default();
        let mut n = 0;
        loop {
            while let Some((frame, _)) = dec.decode(&mut buf).unwrap() {
                let args = frame.into_command().unwrap();
                match answer(n, &args[0]) {
                    Some(reply) => {
                        if end.write_all(&reply).await.is_err() {
                            return n;
                        }
                    }
                    None => return n,
                }
                n += 1;
            }
            match end.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return n,
                Ok(_) => {}
            }
        }
    })
}

fn tag(seq: u64) -> Tag {
    Tag::new(Some(0), "SET", seq).with_key(format!("k{seq}"))
}

async fn drain<S>(w: &mut Writer<S>) -> (Vec<Outcome>, Result<(), Error>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut all = Vec::new();
    loop {
        match w.next_outcome().await {
            Ok(Some(o)) => all.push(o),
            Ok(None) => return (all, Ok(())),
            Err(e) => return (all, Err(e)),
        }
    }
}

#[tokio::test]
async fn invalid_resp_breaks_the_connection_and_reports_every_command() {
    let (client, server) = tokio::io::duplex(1 << 16);
    fake_server(server, |i, _| {
        Some(match i {
            0 | 1 => b"+OK\r\n".to_vec(),
            _ => b"?garbage\r\n".to_vec(),
        })
    });
    let mut w = Writer::new(client, WriterOptions::default());
    for seq in 0..5 {
        w.send(tag(seq), &["SET", "k", "v"]).await.unwrap();
    }
    let e = w.flush().await.unwrap_err();
    assert!(matches!(e, Error::Resp(_)), "{e}");
    assert!(e.to_string().contains("invalid RESP type byte 0x3f"), "{e}");
    let (outcomes, end) = drain(&mut w).await;
    assert!(end.is_err());
    // SELECT 0 and the first SET were answered; the rest are lost (all were written).
    assert!(outcomes[0].is_applied());
    assert_eq!(outcomes.len(), 5);
    for o in &outcomes[1..] {
        assert!(
            matches!(
                o,
                Outcome::Lost {
                    maybe_applied: true,
                    ..
                }
            ),
            "{o}"
        );
    }
}

#[tokio::test]
async fn a_reply_out_of_step_is_an_error_naming_the_command() {
    let (client, server) = tokio::io::duplex(1 << 16);
    // Answers MULTI with QUEUED, as if the transaction had already been open.
    fake_server(server, |_, name| {
        Some(if name.eq_ignore_ascii_case(b"MULTI") {
            b"+QUEUED\r\n".to_vec()
        } else {
            b"+OK\r\n".to_vec()
        })
    });
    let mut w = Writer::new(client, WriterOptions::default());
    w.multi().unwrap();
    w.send(tag(0), &["SET", "k", "v"]).await.unwrap();
    w.exec().unwrap();
    let e = w.flush().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "unexpected reply to MULTI: expected +OK, got +QUEUED"
    );
    let (outcomes, _) = drain(&mut w).await;
    assert!(matches!(outcomes[..], [Outcome::Lost { .. }]));
}

#[tokio::test]
async fn a_reply_cut_by_the_connection_closing() {
    let (client, server) = tokio::io::duplex(1 << 16);
    fake_server(server, |i, _| match i {
        0 | 1 => Some(b"+OK\r\n".to_vec()),
        2 => Some(b"$10\r\nhal".to_vec()),
        _ => None,
    });
    let mut w = Writer::new(client, WriterOptions::default());
    for seq in 0..3 {
        w.send(tag(seq), &["GET", "k"]).await.unwrap();
    }
    let e = w.flush().await.unwrap_err();
    assert!(matches!(e, Error::ConnectionClosed { in_flight: 2 }), "{e}");
    let (outcomes, _) = drain(&mut w).await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes[0].is_applied());
    assert!(matches!(
        outcomes[1],
        Outcome::Lost {
            maybe_applied: true,
            ..
        }
    ));
}

#[tokio::test]
async fn tiny_transport_buffers_do_not_deadlock() {
    // 64-byte pipe: the server blocks on its replies unless the writer reads while it writes.
    let (client, server) = tokio::io::duplex(64);
    let server = fake_server(server, |_, _| Some(b"+OK\r\n".to_vec()));
    let mut w = Writer::new(
        client,
        WriterOptions::default()
            .with_max_in_flight(100_000)
            .with_write_batch_bytes(1 << 30),
    );
    let big = Bytes::from(vec![b'x'; 1 << 18]);
    for seq in 0..20_000u64 {
        if seq % 5000 == 0 {
            let args = [
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"big"),
                big.clone(),
            ];
            w.send_bytes(tag(seq), &args).await.unwrap();
        } else {
            w.send(tag(seq), &["SET", "k", "v"]).await.unwrap();
        }
    }
    w.flush().await.unwrap();
    let (outcomes, end) = drain(&mut w).await;
    end.unwrap();
    assert_eq!(outcomes.len(), 20_000);
    assert!(outcomes.iter().all(Outcome::is_applied));
    w.shutdown().await.unwrap();
    // SELECT 0 + the commands.
    assert_eq!(server.await.unwrap(), 20_001);
}
