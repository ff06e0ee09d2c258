//! Loan reminders over real SMTP, to a small SMTP server this test runs on loopback: with the
//! server down, they stay queued; when it comes back each is delivered exactly once.

use std::sync::{Arc, Mutex};

use chrono::Duration;
use lending::both_dbs;
use lending::mail::{deliver_due, Mailer};
use lending::service::loans;
use lending::service::reminders::{queue_due, Cadence};
use lending::store::outbox;
use lending::testing::{receipt_key, seed_basic, test_clock, TestDb};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the test's SMTP server behaves.
#[derive(Clone, Default)]
struct Behaviour {
    /// Time taken to accept each message (a slow relay).
    accept_delay: Duration2,
    /// A recipient refused for good (550), as a server does for an unknown mailbox.
    refuse: Option<&'static str>,
    /// After this many messages, the server hangs before answering the next one.
    stall_after: Option<usize>,
}

type Duration2 = std::time::Duration;

/// A minimal SMTP server (RFC 5321 happy path): records each message's envelope and data.
async fn smtp_server(listener: TcpListener, received: Arc<Mutex<Vec<String>>>) {
    smtp_server_with(listener, received, Behaviour::default()).await;
}

async fn smtp_server_with(listener: TcpListener, received: Arc<Mutex<Vec<String>>>, behaviour: Behaviour) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let received = received.clone();
        let behaviour = behaviour.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let _ = write.write_all(b"220 test.local ESMTP\r\n").await;
            let mut envelope = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                let upper = line.to_ascii_uppercase();
                let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                    b"250-test.local\r\n250 8BITMIME\r\n"
                } else if behaviour.refuse.is_some_and(|r| upper.starts_with("RCPT TO") && line.contains(r)) {
                    b"550 5.1.1 no such mailbox\r\n"
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
                    tokio::time::sleep(behaviour.accept_delay).await;
                    if behaviour.stall_after.is_some_and(|n| received.lock().unwrap().len() >= n) {
                        std::future::pending::<()>().await;
                    }
                    received.lock().unwrap().push(format!("{envelope}{data}"));
                    envelope.clear();
                    b"250 queued\r\n"
                } else if upper == "QUIT" {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                } else if upper == "RSET" {
                    envelope.clear();
                    b"250 OK\r\n"
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

/// A running test SMTP server and the mailer that talks to it.
async fn start_smtp(behaviour: Behaviour) -> (Mailer, Arc<Mutex<Vec<String>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    (start_smtp_into(behaviour, received.clone()).await, received)
}

/// A running test SMTP server that records into `received`.
async fn start_smtp_into(behaviour: Behaviour, received: Arc<Mutex<Vec<String>>>) -> Mailer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(smtp_server_with(listener, received, behaviour));
    Mailer::smtp(&format!("smtp://127.0.0.1:{port}")).unwrap()
}

/// Queues `n` mails `m0@example.jp` … in the outbox.
async fn queue_mails(store: &lending::Store, n: usize) {
    let mut tx = store.begin().await.unwrap();
    for i in 0..n {
        let mail = outbox::Mail {
            id: format!("mail-{i:04}"),
            dedupe_key: format!("test:{i:04}"),
            recipient: format!("m{i}@example.jp"),
            subject: format!("テスト {i}"),
            body_text: "本文".into(),
            body_html: String::new(),
            attempts: 0,
        };
        assert!(outbox::enqueue(&mut tx, &mail).await.unwrap());
    }
    tx.commit().await.unwrap();
}

/// The Message-ID of each received message, with how often it arrived.
fn arrivals(received: &Mutex<Vec<String>>) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for m in received.lock().unwrap().iter() {
        let id = m.lines().find_map(|l| l.strip_prefix("Message-ID: ")).expect("every mail has a Message-ID");
        *seen.entry(id.to_owned()).or_insert(0) += 1;
    }
    seen
}

/// Mails not yet marked sent.
async fn unsent(store: &lending::Store) -> i64 {
    let mut tx = store.read().await.unwrap();
    outbox::count_pending(&mut tx).await.unwrap()
}

both_dbs!(
    async fn mails_wait_while_smtp_is_down_and_are_delivered_once(backend) {
        let db = TestDb::new(backend).await;
        let clock = test_clock();
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

both_dbs!(
    async fn two_workers_deliver_each_of_200_mails_exactly_once(backend) {
        let db = TestDb::new(backend).await;
        let clock = test_clock();
        // Two workers, as two server replicas: each with its own connection pool.
        let (one, two) = (db.store(clock.clone()).await, db.store(clock.clone()).await);
        queue_mails(&one, 200).await;
        let (mailer, received) = start_smtp(Behaviour { accept_delay: Duration2::from_millis(3), ..Behaviour::default() }).await;
        let run = |store: lending::Store, mailer: Mailer| async move {
            let mut sent = 0;
            loop {
                let (s, f) = deliver_due(&store, &mailer, "lending@localhost").await.unwrap();
                assert_eq!(f, 0);
                sent += s;
                if s == 0 {
                    return sent;
                }
            }
        };
        let (a, b) = tokio::join!(
            tokio::spawn(run(one.clone(), mailer.clone())),
            tokio::spawn(run(two.clone(), mailer.clone()))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a + b, 200, "each mail marked sent once ({a} + {b})");
        assert!(a > 0 && b > 0, "both workers took part ({a} + {b})");
        let seen = arrivals(&received);
        assert_eq!(seen.len(), 200, "every mail arrived");
        assert!(seen.values().all(|&n| n == 1), "none arrived twice: {:?}", seen.iter().filter(|(_, &n)| n > 1).collect::<Vec<_>>());
        assert_eq!(unsent(&one).await, 0);
        one.close().await;
        two.close().await;
    }
);

both_dbs!(
    async fn a_worker_killed_mid_batch_loses_no_mail(backend) {
        let db = TestDb::new(backend).await;
        let clock = test_clock();
        let (one, two) = (db.store(clock.clone()).await, db.store(clock.clone()).await);
        queue_mails(&one, 200).await;
        // Worker one's relay takes five mails, then hangs on the sixth: the worker is mid-batch
        // when it is killed (its task dropped, like a killed process).
        let received = Arc::new(Mutex::new(Vec::new()));
        let stalling = Behaviour { stall_after: Some(5), ..Behaviour::default() };
        let doomed_mailer = start_smtp_into(stalling, received.clone()).await;
        let mailer = start_smtp_into(Behaviour::default(), received.clone()).await;
        let doomed = tokio::spawn({
            let one = one.clone();
            async move { deliver_due(&one, &doomed_mailer, "lending@localhost").await }
        });
        // Five sent and marked sent: the worker now waits on the sixth, holding a batch of ten.
        while unsent(&two).await > 195 {
            tokio::time::sleep(Duration2::from_millis(5)).await;
        }
        doomed.abort();
        assert!(doomed.await.unwrap_err().is_cancelled());
        // A dead process's connections close with it.
        one.close().await;

        // Worker two sends everything else; the dead worker's leased batch waits for its lease.
        let (sent, failed) = deliver_due(&two, &mailer, "lending@localhost").await.unwrap();
        assert_eq!(failed, 0);
        assert_eq!(sent, 200 - 10, "all but the dead worker's batch of ten");
        assert_eq!(unsent(&two).await, 5, "its five unsent mails wait for the lease");
        assert_eq!(deliver_due(&two, &mailer, "lending@localhost").await.unwrap(), (0, 0), "leased mails are not taken early");

        // The lease runs out: worker two retries them.
        clock.advance(Duration::minutes(7));
        assert_eq!(deliver_due(&two, &mailer, "lending@localhost").await.unwrap(), (5, 0));
        assert_eq!(unsent(&two).await, 0, "no mail lost");
        let seen = arrivals(&received);
        assert_eq!(seen.len(), 200, "every mail arrived");
        // The mail in flight never reached the hung relay's queue, so none arrived twice. (Had the
        // relay taken it before the worker died, the retry would carry the same Message-ID.)
        assert!(seen.values().all(|&n| n == 1), "none arrived twice");
        two.close().await;
    }
);

both_dbs!(
    async fn a_refused_address_is_given_up_after_bounded_attempts_and_shown_to_admins(backend) {
        let db = TestDb::new(backend).await;
        let clock = test_clock();
        let store = db.store(clock.clone()).await;
        let b = seed_basic(&store, 1).await;
        // The refused mail is the oldest in the queue; five good ones come after it.
        let mut tx = store.begin().await.unwrap();
        let bad = outbox::Mail {
            id: "bad".into(),
            dedupe_key: "a:bad".into(),
            recipient: "nobody@example.jp".into(),
            subject: "宛先違い".into(),
            body_text: "本文".into(),
            body_html: String::new(),
            attempts: 0,
        };
        outbox::enqueue(&mut tx, &bad).await.unwrap();
        tx.commit().await.unwrap();
        queue_mails(&store, 5).await;
        let (mailer, received) = start_smtp(Behaviour { refuse: Some("nobody@"), ..Behaviour::default() }).await;

        assert_eq!(deliver_due(&store, &mailer, "lending@localhost").await.unwrap(), (5, 1), "the others are not held up");
        assert_eq!(received.lock().unwrap().len(), 5);
        for round in 2..=lending::mail::MAX_ATTEMPTS_REFUSED {
            assert_eq!(deliver_due(&store, &mailer, "lending@localhost").await.unwrap(), (0, 0), "back-off before try {round}");
            clock.advance(Duration::minutes(61));
            assert_eq!(deliver_due(&store, &mailer, "lending@localhost").await.unwrap(), (0, 1), "try {round}");
        }
        // Given up: never tried again, listed for admins with the server's answer.
        clock.advance(Duration::days(2));
        assert_eq!(deliver_due(&store, &mailer, "lending@localhost").await.unwrap(), (0, 0), "given up");
        let mut tx = store.read().await.unwrap();
        let (failed, total) = lending::service::outbox::failed(&mut tx, &b.admin).await.unwrap();
        assert_eq!(total, 1);
        assert_eq!(failed[0].id, "bad");
        assert_eq!(failed[0].attempts, lending::mail::MAX_ATTEMPTS_REFUSED);
        assert!(failed[0].last_error.contains("550") || failed[0].last_error.contains("no such mailbox"), "{}", failed[0].last_error);
        assert!(lending::service::outbox::failed(&mut tx, &b.auditor).await.is_ok(), "auditors look");
        assert!(matches!(lending::service::outbox::failed(&mut tx, &b.nurse).await, Err(lending::Error::Forbidden)));
        drop(tx);

        // The admins' digest counts it.
        let mut tx = store.begin().await.unwrap();
        let queued = lending::service::reminders::queue_digest(&mut tx, lending::store::dashboard::Thresholds::default(), "https://staff.example").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(queued, 1, "one admin");
        let mut tx = store.read().await.unwrap();
        let digest = outbox::all(&mut tx).await.unwrap().into_iter().find(|m| m.dedupe_key.starts_with("digest:")).unwrap();
        assert!(digest.body_text.contains("送信できなかったメール") && digest.body_text.contains(": 1件"), "{}", digest.body_text);
        drop(tx);

        // An admin sends it again (the address is still refused: it fails again, counted afresh),
        // or sets it aside; a nurse may do neither.
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(lending::service::outbox::retry(&mut tx, &b.nurse, "bad").await, Err(lending::Error::Forbidden)));
        lending::service::outbox::retry(&mut tx, &b.admin, "bad").await.unwrap();
        tx.commit().await.unwrap();
        // The digest goes out; the refused mail fails its first fresh try.
        assert_eq!(deliver_due(&store, &mailer, "lending@localhost").await.unwrap(), (1, 1));
        let mut tx = store.begin().await.unwrap();
        assert!(lending::service::outbox::dismiss(&mut tx, &b.admin, "bad").await.is_err(), "not failed yet");
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "mail.retry").await.unwrap(), 1);
        drop(tx);
        store.close().await;
    }
);
