//! Test support shared by every crate's tests: a fresh database per test on either backend,
//! and `both_dbs!`, which turns one test body into a SQLite test and a PostgreSQL test.
//!
//! PostgreSQL is mandatory: an unreachable server fails the test with instructions.

// Test support: a failed setup should stop the test loudly.
#![allow(clippy::expect_used, clippy::missing_panics_doc)]

use std::path::PathBuf;

use sqlx::Connection as _;

use crate::clock::Clock;
use crate::store::{Backend, PoolSize, Store};

/// Where the tests find PostgreSQL (any database the user may connect to; `test` by default).
pub fn pg_admin_url() -> String {
    std::env::var("LENDING_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh, migrated database that is dropped with this value.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
    pub data_dir: PathBuf,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_owned();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("lending.sqlite").display());
                Self { backend, url, pg_name: None, _dir: Some(dir), data_dir }
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is required for the tests and is not reachable at {admin}: {e}\n\
                         Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
                         or point LENDING_TEST_PG_URL at a server where the user may CREATE DATABASE."
                    )
                });
                let name = format!("t_{}", crate::ids::new_id().replace('-', ""));
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
                let url = replace_db(&admin, &name);
                Self { backend, url, pg_name: Some(name), _dir: Some(dir), data_dir }
            }
        }
    }

    /// A migrated store on this database with the given clock.
    pub async fn store(&self, clock: Clock) -> Store {
        // Small pools: tests run side by side against one PostgreSQL server.
        let store = self.store_unmigrated(clock, PoolSize(6)).await;
        store.migrate().await.expect("migrate");
        store
    }

    pub async fn store_unmigrated(&self, clock: Clock, size: PoolSize) -> Store {
        Store::connect(&self.url, clock, size).await.expect("connect")
    }
}

fn replace_db(url: &str, name: &str) -> String {
    match url.rfind('/') {
        Some(i) if url[..i].contains("://") && !url[..i].ends_with('/') => {
            format!("{}/{name}", &url[..i])
        }
        _ => format!("{}/{name}", url.trim_end_matches('/')),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = pg_admin_url();
        // Drop runs outside async context; a short-lived runtime on its own thread does it.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
                    }
                });
            }
        })
        .join();
    }
}

/// Writes one test body twice: `name::sqlite` and `name::postgres`. The body sees `backend`.
#[macro_export]
macro_rules! both_dbs {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($backend: $crate::store::Backend) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { run($crate::store::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { run($crate::store::Backend::Postgres).await }
        }
    };
}

/// A small clinic for tests: institution, two nurses, an admin, one model with its
/// explanation document, `devices` devices and three patients.
pub struct Basic {
    pub nurse: crate::Actor,
    pub nurse2: crate::Actor,
    pub admin: crate::Actor,
    pub auditor: crate::Actor,
    pub model_id: String,
    pub document_id: String,
    pub wipe_steps: Vec<String>,
    pub devices: Vec<String>,
    pub patients: Vec<String>,
}

pub async fn seed_basic(store: &Store, devices: usize) -> Basic {
    use crate::service::{registry, users};
    use crate::store::registry::{DeviceModel, Institution};
    use crate::Role;
    let cli = crate::Actor::cli();
    let mut tx = store.begin().await.expect("begin");
    registry::save_institution(
        &mut tx,
        &cli,
        &Institution {
            name: "テスト在宅クリニック".into(),
            name_en: "Test Home Clinic".into(),
            day_phone: "03-0000-1111".into(),
            day_hours: "平日 9:00〜18:00".into(),
            day_hours_en: "Weekdays 9:00-18:00".into(),
            night_phone: "03-0000-2222".into(),
            night_hours: "夜間・休日".into(),
            night_hours_en: "Nights and holidays".into(),
            email: "clinic@example.jp".into(),
            address: "東京都".into(),
            public_base_url: String::new(),
        },
    )
    .await
    .expect("institution");
    let mut made = Vec::new();
    for (login, role) in [("n1", Role::Nurse), ("n2", Role::Nurse), ("a1", Role::Admin), ("au1", Role::Auditor)] {
        let (u, _) = users::add_user(
            &mut tx,
            &cli,
            users::NewUser {
                login: login.into(),
                name: format!("職員 {login}"),
                role,
                site: "本院".into(),
                email: format!("{login}@example.jp"),
            },
        )
        .await
        .expect("user");
        // As if each had signed in with password and second factor.
        made.push(
            crate::Actor::user(&u.id, &u.login, role, "test")
                .with_credential(crate::Credential::Session("test".into())),
        );
    }
    let wipe_steps = vec!["初期化".to_owned(), "ペアリング解除".to_owned(), "清拭".to_owned()];
    let model = registry::create_model(
        &mut tx,
        &cli,
        DeviceModel {
            id: String::new(),
            vendor_id: None,
            manufacturer: "テスト医療機器".into(),
            model_name: "パルスオキシメータ T1".into(),
            model_name_en: "Pulse oximeter T1".into(),
            kind: "wearable".into(),
            connectivity: "Bluetooth".into(),
            data_on_device: "[\"SpO2\"]".into(),
            security_limitations: String::new(),
            latest_firmware: "1.0".into(),
            support_ends: None,
            wipe_steps: serde_json::to_string(&wipe_steps).expect("json"),
            summary_ja: "指先で酸素飽和度を測ります。".into(),
            summary_en: "Measures oxygen saturation at the fingertip.".into(),
            troubleshooting_ja: "[]".into(),
            troubleshooting_en: "[]".into(),
            alarms_ja: String::new(),
            alarms_en: String::new(),
            if_lost_ja: String::new(),
            if_lost_en: String::new(),
            returning_ja: String::new(),
            returning_en: String::new(),
            data_protection_ja: String::new(),
            data_protection_en: String::new(),
            current_document_id: None,
        },
        registry::NewDocument {
            title_ja: "貸出に関するご説明".into(),
            title_en: "About the loan".into(),
            body_ja: "日中は{day_phone}、夜間は{night_phone}へご連絡ください。".into(),
            body_en: "Call {day_phone} by day, {night_phone} at night.".into(),
        },
    )
    .await
    .expect("model");
    let mut device_ids = Vec::new();
    for n in 0..devices {
        let d = registry::register_device(
            &mut tx,
            &cli,
            registry::NewDevice {
                asset_tag: format!("T-{n:04}"),
                serial: format!("S{n}"),
                model_id: model.id.clone(),
                firmware_version: "1.0".into(),
                firmware_updated_on: None,
                site: "本院".into(),
                location: String::new(),
                notes: String::new(),
            },
        )
        .await
        .expect("device");
        device_ids.push(d.id);
    }
    let mut patients = Vec::new();
    for (i, name) in ["山田 花子", "鈴木 一郎", "高橋 次郎"].iter().enumerate() {
        let p = registry::create_patient(
            &mut tx,
            &cli,
            registry::NewPatient {
                number: format!("P-{i:06}"),
                name: (*name).into(),
                kana: String::new(),
                phone: String::new(),
                birth_date: String::new(),
            },
        )
        .await
        .expect("patient");
        patients.push(p.id);
    }
    tx.commit().await.expect("commit");
    let mut it = made.into_iter();
    let (Some(nurse), Some(nurse2), Some(admin), Some(auditor)) = (it.next(), it.next(), it.next(), it.next()) else {
        unreachable!("four users were made")
    };
    Basic {
        nurse,
        nurse2,
        admin,
        auditor,
        document_id: model.current_document_id.clone().expect("document"),
        model_id: model.id,
        wipe_steps,
        devices: device_ids,
        patients,
    }
}

impl Basic {
    /// A passed "clear" wipe of `device_id` with the model's whole checklist.
    pub fn wipe_request(&self, device_id: &str) -> crate::service::wipes::WipeRequest {
        crate::service::wipes::WipeRequest {
            device_id: device_id.into(),
            method: "clear".into(),
            tool: "factory reset".into(),
            tool_version: "1".into(),
            checklist: self.wipe_steps.clone(),
            evidence_ref: String::new(),
            passed: true,
            destination: String::new(),
            notes: String::new(),
        }
    }

    /// A check-out request with a signed consent on the current document.
    pub fn check_out_request(&self, patient: usize, devices: &[usize]) -> crate::service::loans::CheckOutRequest {
        crate::service::loans::CheckOutRequest {
            patient_id: self.patients[patient].clone(),
            device_ids: devices.iter().map(|&i| self.devices[i].clone()).collect(),
            due_on: chrono::NaiveDate::from_ymd_opt(2099, 1, 1).expect("date"),
            purpose: "テスト".into(),
            consent: Some(crate::service::loans::ConsentInput {
                signer_name: "山田 花子".into(),
                relationship: "self".into(),
                relationship_note: String::new(),
                signature_svg: crate::demo::DEMO_SIGNATURE.into(),
                document_ids: vec![self.document_id.clone()],
                proxy: None,
            }),
        }
    }
}

/// The instant every test starts at unless it says otherwise: Friday 2026-11-20, 10:00 in Japan
/// (01:00 UTC), a working morning after the admins' 08:00 digest. Tests never read the wall
/// clock, so the suite gives the same answers at any hour, on any date.
pub fn test_now() -> chrono::DateTime<chrono::Utc> {
    tokyo(2026, 11, 20, 10, 0)
}

/// A manual clock standing at [`test_now`]; tests move it with `advance`/`set`.
pub fn test_clock() -> Clock {
    Clock::manual(test_now())
}

/// A wall-clock time in Japan, as UTC (for tests that need a particular hour or date).
pub fn tokyo(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> chrono::DateTime<chrono::Utc> {
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day).expect("a real date");
    crate::timefmt::tokyo_midnight(date)
        + chrono::Duration::hours(hour.into())
        + chrono::Duration::minutes(minute.into())
}

/// The fixed receipt key of tests, as `LENDING_RECEIPT_KEY` takes it (for the real binaries).
pub const RECEIPT_KEY_B64: &str = "dGVzdC1yZWNlaXB0LWtleS0wMDAwMDAwMDAwMDAwMDA";

/// A fixed receipt key for tests.
pub fn receipt_key() -> crate::receipts::ReceiptKey {
    crate::receipts::ReceiptKey::from_base64(RECEIPT_KEY_B64).expect("32-byte seed")
}

/// A password that passes the strength check, for test users.
pub const TEST_PASSWORD: &str = "violet-tractor-harbor-lamp";

/// An API token `login` created for themselves (as on their own tokens page), valid 90 days.
pub async fn own_token(store: &Store, login: &str) -> String {
    use crate::service::users::{create_token, TokenFor};
    let mut tx = store.begin().await.expect("begin");
    let u = crate::store::users::by_login(&mut tx, login).await.expect("query").expect("user exists");
    let me =
        crate::Actor::user(&u.id, &u.login, u.role, "test").with_credential(crate::Credential::Session("test".into()));
    let token = create_token(&mut tx, &me, TokenFor::Myself, "test", 90).await.expect("token");
    tx.commit().await.expect("commit");
    token
}

/// Gives `login` the password [`TEST_PASSWORD`] and an enrolled TOTP seed, as if they had
/// finished first sign-in; returns the seed (the test's "authenticator app").
pub async fn enroll(store: &Store, login: &str, keys: &crate::secrets::SecretBox) -> Vec<u8> {
    use crate::store::users;
    let mut tx = store.begin().await.expect("begin");
    let user = users::by_login(&mut tx, login).await.expect("query").expect("user exists");
    let hash = crate::auth::passwords::hash(TEST_PASSWORD).expect("hash");
    users::set_password(&mut tx, &user.id, &hash, false).await.expect("password");
    let secret = crate::auth::totp::new_secret();
    let sealed = keys.seal(&secret, &format!("totp:{}", user.id)).expect("seal");
    let now = tx.now();
    users::set_totp(&mut tx, &user.id, Some(&sealed), Some(now)).await.expect("totp");
    tx.commit().await.expect("commit");
    secret
}

/// A patient's "alarm" report sent from the help page of device `device_id` (as the public form
/// would send it).
pub async fn report_alarm(store: &Store, device_id: &str) {
    let token = crate::store::devices::get(&mut store.read().await.expect("read"), device_id)
        .await
        .expect("device")
        .expect("device exists")
        .qr_token;
    let mut tx = store.begin().await.expect("begin");
    let report = crate::service::reports::ReportInput { category: "alarm".into(), ..Default::default() };
    crate::service::reports::submit(&mut tx, &token, &report).await.expect("report");
    tx.commit().await.expect("commit");
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::replace_db("postgres://postgres@127.0.0.1:5432/test", "t_1"),
            "postgres://postgres@127.0.0.1:5432/t_1"
        );
    }
}
