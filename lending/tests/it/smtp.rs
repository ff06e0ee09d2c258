//! Loan reminders over real SMTP, to a small SMTP server this test runs on loopback: with the
//! server down, they stay queued; when it comes back each is delivered exactly once.

use std::sync::{Arc, Mutex};

use chrono::Duration;
use lending::mail::{deliver_due, Mailer};
use lending::service::loans;
use lending::service::reminders::{queue_due, Cadence};
use lending::store::outbox;
use lending::testing::{receipt_key, seed_basic, TestDb};
use lending::{both_dbs, Clock};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A minimal SMTP server (RFC 5321 happy path): records each message's envelope and data.
async fn smtp_server(listener: TcpListener, received: Arc<Mutex<Vec<String>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let received = received.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let _ = write.write_all(b"220 test.local ESMTP\r\n").await;
            let mut envelope = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                let upper = line.to_ascii_uppercase();
                let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                    b"250-test.local\r\n250 8BITMIME\r\n"
                } else if upper.starts_with("MAIL FROM") || upper.starts_with("RCPT TO") {
                    envelope.push_str(&line);
                    envelope.push('\n');
                    b"250 OK\r\n"
                } else if upper == "DATA" {
                    let _ = write.write_all(b"354 go ahead\r\n").await;
                    let mut data = String::new();
                    while let Ok(Some(l)) = lines.next_line().await {
                        if l == "." {
                            break;
                        }
                        data.push_str(&l);
                        data.push('\n');
                    }
                    received.lock().unwrap().push(format!("{envelope}{data}"));
                    envelope.clear();
                    b"250 queued\r\n"
                } else if upper == "QUIT" {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                } else {
                    b"250 OK\r\n"
                };
                if write.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

both_dbs!(
    async fn mails_wait_while_smtp_is_down_and_are_delivered_once(backend) {
        let db = TestDb::new(backend).await;
        let clock = Clock::manual(chrono::Utc::now());
        let store = db.store(clock.clone()).await;
        let b = seed_basic(&store, 2).await;
        // Two loans due tomorrow, by two nurses: each gets her "due soon" reminder.
        let mut tx = store.begin().await.unwrap();
        for (nurse, device) in [(&b.nurse, 0), (&b.nurse2, 1)] {
            let mut req = b.check_out_request(0, &[device]);
            req.due_on = clock.today_tokyo() + Duration::days(1);
            loans::check_out(&mut tx, nurse, req, &receipt_key()).await.unwrap();
        }
        assert_eq!(queue_due(&mut tx, Cadence::default(), "https://staff.example").await.unwrap(), 2);
        assert_eq!(queue_due(&mut tx, Cadence::default(), "https://staff.example").await.unwrap(), 0, "each reminder is queued once");
        tx.commit().await.unwrap();

        // A port with nothing listening: the SMTP server is down.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mailer = Mailer::smtp(&format!("smtp://127.0.0.1:{port}")).unwrap();
        assert_eq!(deliver_due(&store, &mailer, "lending@localhost").await.unwrap(), (0, 2));
        assert_eq!(deliver_due(&store, &mailer, "lending@localhost").await.unwrap(), (0, 0), "retried only after the back-off");
        let mut tx = store.read().await.unwrap();
        assert!(outbox::all(&mut tx).await.unwrap().iter().all(|m| m.attempts == 1), "kept, with the failure counted");
        drop(tx);

        // The server comes back on the same port.
        let received = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        tokio::spawn(smtp_server(listener, received.clone()));
        clock.advance(chrono::Duration::minutes(2));
        assert_eq!(deliver_due(&store, &mailer, "lending@localhost").await.unwrap(), (2, 0));
        clock.advance(chrono::Duration::minutes(60));
        assert_eq!(deliver_due(&store, &mailer, "lending@localhost").await.unwrap(), (0, 0), "never sent twice");
        let got = received.lock().unwrap().clone();
        assert_eq!(got.len(), 2);
        for to in ["n1@example.jp", "n2@example.jp"] {
            let mine: Vec<&String> = got.iter().filter(|m| m.contains(&format!("RCPT TO:<{to}>"))).collect();
            assert_eq!(mine.len(), 1, "{got:?}");
            assert!(mine[0].contains("Subject: =?utf-8?") && mine[0].contains("MAIL FROM:<lending@localhost>"), "{}", mine[0]);
        }
        let mut tx = store.read().await.unwrap();
        let queued = outbox::all(&mut tx).await.unwrap();
        assert!(queued.iter().all(|m| m.subject.contains("返却予定日が近づいています")), "the mails sent were the reminders");
        store.close().await;
    }
);
