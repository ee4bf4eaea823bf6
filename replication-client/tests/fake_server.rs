//! Faults a real server cannot produce, from a hand-written fake server: garbage instead of
//! the protocol must end in an error, never a panic or a hang.

mod common;

use std::time::Duration;

use common::*;
use replication_client::{Backoff, Error, Event, Phase, Replica};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ID: &str = "0123456789abcdef0123456789abcdef01234567";

/// Serves each connection with `script(n)`: bytes to send after reading the client's first
/// bytes, then keeps the connection open until the client closes it.
async fn fake(script: impl Fn(usize) -> Vec<Vec<u8>> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut sock, _)) = listener.accept().await {
            let replies = script(n);
            n += 1;
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                for r in replies {
                    if sock.read(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if sock.write_all(&r).await.is_err() {
                        return;
                    }
                }
                while sock.read(&mut buf).await.unwrap_or(0) > 0 {}
            });
        }
    });
    format!("redis://{addr}")
}

#[test]
fn garbage_during_handshake_is_an_error() {
    runtime().block_on(async {
        for garbage in [
            &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
            b"\x00\x01\x02\xff\r\n",
            b"$5\r\nhello\r\n",
            &[b'+'; 100_000][..],
        ] {
            let g = garbage.to_vec();
            let url = fake(move |_| vec![g.clone()]).await;
            let e = Replica::connect(config(&url)).await.unwrap_err();
            assert!(
                matches!(e, Error::Protocol { .. } | Error::LimitExceeded { .. }),
                "{e:?}"
            );
        }
    });
}

#[test]
fn garbage_in_the_stream_disconnects_and_gives_up_per_policy() {
    runtime().block_on(async {
        let url = fake(|n| {
            if n == 0 {
                vec![
                    b"+PONG\r\n".to_vec(),
                    b"+OK\r\n+OK\r\n+OK\r\n".to_vec(),
                    format!(
                        "+FULLRESYNC {ID} 0\r\n$0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n\
                         *2\r\n$3\r\nGET\r\n$1\r\nk\r\nGARBAGE\r\n"
                    )
                    .into_bytes(),
                ]
            } else {
                vec![b"\xde\xad\xbe\xef\r\n".to_vec()]
            }
        })
        .await;
        let cfg = config(&url).backoff(Backoff {
            initial: Duration::from_millis(10),
            max_attempts: Some(2),
            ..Backoff::default()
        });
        let mut replica = Replica::connect(cfg).await.unwrap();
        let mut events = Vec::new();
        let fatal = loop {
            match tokio::time::timeout(Duration::from_secs(10), replica.recv())
                .await
                .expect("no hang")
            {
                Some(Ok(ev)) => events.push(ev),
                Some(Err(e)) => break e,
                None => panic!("ended without an error"),
            }
        };
        // Both commands before the garbage were delivered.
        let cmds: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Command(c) => Some(c.name().to_vec()),
                _ => None,
            })
            .collect();
        assert_eq!(cmds, [b"SET".to_vec(), b"GET".to_vec()]);
        assert!(matches!(
            events
                .iter()
                .find(|e| matches!(e, Event::Disconnected { .. })),
            Some(Event::Disconnected {
                error: Error::Protocol {
                    phase: Phase::Stream,
                    ..
                },
                attempt: 1,
                ..
            })
        ));
        assert!(
            matches!(fatal, Error::ReconnectExhausted { attempts: 2, .. }),
            "{fatal:?}"
        );
        assert!(replica.recv().await.is_none());
    });
}

#[test]
fn connection_refused_is_a_connect_error() {
    runtime().block_on(async {
        let port = testkit::free_port();
        let e = Replica::connect(config(&format!("redis://127.0.0.1:{port}")))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    });
}

/// `-LOADING` is retried with the backoff until the server is ready.
#[test]
fn loading_is_retried() {
    runtime().block_on(async {
        let url = fake(|n| {
            let psync_reply = if n < 2 {
                b"-LOADING Redis is loading the dataset in memory\r\n".to_vec()
            } else {
                format!("+FULLRESYNC {ID} 0\r\n$0\r\n").into_bytes()
            };
            vec![
                b"+PONG\r\n".to_vec(),
                b"+OK\r\n+OK\r\n+OK\r\n".to_vec(),
                psync_reply,
            ]
        })
        .await;
        let cfg = config(&url).backoff(Backoff {
            initial: Duration::from_millis(10),
            ..Backoff::default()
        });
        let mut replica = Replica::connect(cfg).await.unwrap();
        let ev = replica.recv().await.unwrap().unwrap();
        assert!(matches!(ev, Event::FullResync { .. }), "{ev:?}");

        // With no retries allowed, the error is returned as is.
        let url = fake(|_| {
            vec![
                b"+PONG\r\n".to_vec(),
                b"+OK\r\n+OK\r\n+OK\r\n".to_vec(),
                b"-LOADING Redis is loading the dataset in memory\r\n".to_vec(),
            ]
        })
        .await;
        let cfg = config(&url).backoff(Backoff {
            max_attempts: Some(0),
            ..Backoff::default()
        });
        let e = Replica::connect(cfg).await.unwrap_err();
        assert!(matches!(&e, Error::ReconnectExhausted { last, .. } if matches!(**last, Error::NotReady { .. })), "{e:?}");
    });
}
