//! Every service entry point that acts for someone, called as every role (SPEC §6, R26/R28): the
//! ones the policy refuses answer `Forbidden` before anything is read or written; the ones it
//! allows get past the policy (they may still find nothing, or refuse on the record's own rules).
//! The list is checked against the service sources, so a new entry point cannot be left out.

use lending::service::idempotency::IdempotencyKey;
use lending::service::loans::{DeviceCondition, KitReturn, ReturnRequest};
use lending::service::monthly::Month;
use lending::service::oversight::SummaryCache;
use lending::service::patients::PatientEdit;
use lending::service::registry::{NewDevice, NewDocument, NewPatient};
use lending::service::users::{NewUser, TokenFor};
use lending::service::{
    archive, auth, custody, drafts, home, import, incidents, inspection, labels, loans, monthly, offline, outbox,
    oversight, patients, registry, reports, users, wipes,
};
use lending::store::dashboard::{Filter, Thresholds};
use lending::store::{self, audit};
use lending::testing::{receipt_key, seed_basic, Basic, TestDb};
use lending::{both_dbs, Action, Actor, Error, Principal, Result, Role, Store};

/// (module::function, what the policy asks of the caller). A function listed twice is called
/// twice, with arguments that ask for different things.
const ENTRIES: &[(&str, Action)] = &[
    ("archive::patient_copy", Action::Read),
    ("archive::return_receipt", Action::Read),
    ("archive::certificate", Action::Read),
    ("archive::ehr_for_loan", Action::Read),
    ("archive::ehr_for_patient", Action::Read),
    ("auth::change_password", Action::OwnAccount),
    ("auth::sign_out", Action::OwnAccount),
    ("auth::sign_out_everywhere", Action::OwnAccount),
    ("auth::sign_out_everywhere(other)", Action::ManageStaff),
    ("auth::set_disabled", Action::ManageStaff),
    ("auth::reset_second_factor", Action::ManageStaff),
    ("auth::reset_password", Action::ManageStaff),
    ("custody::record", Action::Operate),
    ("drafts::mine", Action::OwnAccount),
    ("drafts::open", Action::Operate),
    ("drafts::sent", Action::Operate),
    ("home::home", Action::Read),
    ("import::import_devices", Action::Operate),
    ("inspection::read", Action::Oversee),
    ("inspection::csv", Action::Oversee),
    ("incidents::report_lost", Action::Operate),
    ("incidents::mark_found", Action::Operate),
    ("incidents::write_off", Action::Operate),
    ("incidents::send_to_maintenance", Action::Operate),
    ("incidents::back_from_maintenance", Action::Operate),
    ("labels::rotate_token", Action::Operate),
    ("labels::print_batch", Action::Read),
    ("loans::check_out", Action::Operate),
    ("loans::check_out_once", Action::Operate),
    ("loans::return_device", Action::Operate),
    ("loans::return_device_once", Action::Operate),
    ("loans::withdraw_consent", Action::Operate),
    ("loans::view", Action::Read),
    ("loans::extend", Action::Operate),
    ("loans::extend_once", Action::Operate),
    ("loans::void", Action::Operate),
    ("loans::void_once", Action::Operate),
    ("loans::return_kit", Action::Operate),
    ("loans::return_kit_once", Action::Operate),
    ("monthly::read", Action::Oversee),
    ("offline::request_enrolment", Action::Operate),
    ("offline::approve_enrolment", Action::ManageStaff),
    ("offline::revoke_enrolment", Action::ManageStaff),
    ("offline::enrolments", Action::ManageStaff),
    ("offline::enrolments(mine)", Action::OwnAccount),
    ("offline::sync", Action::Operate),
    ("offline::conflicts", Action::Oversee),
    ("offline::conflicts(mine)", Action::Operate),
    ("offline::resolve_conflict", Action::Operate),
    ("offline::prepare", Action::Operate),
    ("outbox::failed", Action::Oversee),
    ("outbox::retry", Action::ManageStaff),
    ("outbox::dismiss", Action::ManageStaff),
    ("oversight::dashboard", Action::Read),
    ("oversight::outstanding", Action::Read),
    ("oversight::outstanding_csv", Action::Read),
    ("oversight::audit_log", Action::Oversee),
    ("oversight::verify_chain", Action::Oversee),
    ("patients::search", Action::Read),
    ("patients::view", Action::Read),
    ("patients::record", Action::Read),
    ("patients::edit", Action::Operate),
    ("registry::save_institution", Action::EditRegistry),
    ("registry::create_vendor", Action::EditRegistry),
    ("registry::add_document_version", Action::EditRegistry),
    ("registry::create_model", Action::EditRegistry),
    ("registry::register_device", Action::Operate),
    ("registry::create_patient", Action::Operate),
    ("reports::resolve", Action::Operate),
    ("users::add_user", Action::ManageStaff),
    ("users::create_token", Action::OwnAccount),
    ("users::tokens", Action::Oversee),
    ("users::tokens(mine)", Action::OwnAccount),
    ("users::revoke_token", Action::OwnAccount),
    ("users::token_to_revoke", Action::OwnAccount),
    ("users::staff_member", Action::ManageStaff),
    ("wipes::record", Action::Operate),
    ("wipes::record_once", Action::Operate),
    ("wipes::may_verify", Action::Operate),
    ("wipes::verify", Action::Operate),
    ("wipes::verify_once", Action::Operate),
    ("custody::of_open_loan", Action::Read),
    ("devices::history", Action::Read),
    ("incidents::list", Action::Read),
    ("incidents::get", Action::Read),
    ("loans::list", Action::Read),
    ("oversight::audit_page", Action::Oversee),
    ("registry::model", Action::Read),
    ("registry::documents", Action::Read),
    ("registry::document", Action::Read),
    ("reports::list_for", Action::Read),
    ("reports::get", Action::Read),
    ("users::list", Action::Oversee),
    ("users::me", Action::OwnAccount),
    ("wipes::list", Action::Read),
    ("wipes::get", Action::Read),
];

/// Calls one entry point as `actor` with plausible arguments on the seeded clinic. Calls that take
/// a transaction get one that is never committed; the others commit what they are allowed to.
async fn call(name: &str, store: &Store, b: &Basic, actor: &Actor, n: usize) -> Result<()> {
    let key = receipt_key();
    let filter = Filter { page: 1, ..Filter::default() };
    let t = Thresholds::default();
    // These open their own transactions (a held one would wait for SQLite's write lock).
    let own = match name {
        "home::home" => Some(home::home(store, &SummaryCache::default(), actor, t, 2).await.map(drop)),
        "oversight::dashboard" => {
            Some(oversight::dashboard(store, &SummaryCache::default(), actor, &filter, t).await.map(drop))
        }
        "oversight::outstanding" => Some(oversight::outstanding(store, actor, &filter, t).await.map(drop)),
        "oversight::outstanding_csv" => Some(oversight::outstanding_csv(store, actor, &filter, t).await.map(drop)),
        "oversight::verify_chain" => Some(oversight::verify_chain(store, actor, &key.public_key()).await.map(drop)),
        "offline::sync" => {
            let envelope = offline::Envelope {
                enrolment_id: "no-such-phone".into(),
                payload: "{}".into(),
                signature: String::new(),
            };
            Some(offline::sync(store, actor, &key, None, &envelope).await.map(drop))
        }
        _ => None,
    };
    if let Some(got) = own {
        return got;
    }
    let mut held = store.begin().await?;
    let tx = &mut held;
    let device = b.devices[0].as_str();
    let idem = IdempotencyKey::parse(Some(&format!("policy-test-key-{n:06}")))?;
    let idem = idem.as_ref();
    let wipe = || b.wipe_request(device);
    let ret =
        || ReturnRequest { device_id: device.into(), returned_by_name: "山田".into(), ..ReturnRequest::default() };
    let kit = || KitReturn {
        loan_id: "no-such-loan".into(),
        devices: vec![DeviceCondition { device_id: device.into(), ..DeviceCondition::default() }],
        returned_by_name: "山田".into(),
        signature_svg: None,
    };
    let document = || NewDocument {
        title_ja: "説明".into(),
        title_en: String::new(),
        body_ja: "本文".into(),
        body_en: String::new(),
    };
    let unique = format!("{}-{n}", actor.role.as_str());
    let day = chrono::NaiveDate::from_ymd_opt(2099, 1, 1);
    let window = chrono::Duration::minutes(30);
    let me = actor.user_id.as_str();
    match name {
        "auth::change_password" => {
            // Someone without an account of their own tries it on a nurse's.
            let whose = if me.is_empty() { b.nurse.user_id.as_str() } else { me };
            let user = store::users::get(tx, whose).await?.ok_or(Error::NotFound)?;
            let session = session_of(me);
            auth::change_password(tx, actor, &user, &session, Some("wrong"), "a new long passphrase 2026")
                .await
                .map(drop)
        }
        "auth::sign_out" => auth::sign_out(tx, actor, &session_of(me)).await,
        "auth::sign_out_everywhere" => auth::sign_out_everywhere(tx, actor, me).await,
        "auth::sign_out_everywhere(other)" => auth::sign_out_everywhere(tx, actor, &b.nurse2.user_id).await,
        "auth::set_disabled" => auth::set_disabled(tx, actor, &b.nurse2.user_id, true).await,
        "auth::reset_second_factor" => auth::reset_second_factor(tx, actor, &b.nurse2.user_id).await,
        "auth::reset_password" => auth::reset_password(tx, actor, &b.nurse2.user_id).await.map(drop),
        "custody::record" => custody::record(
            tx,
            actor,
            serde_json::from_value(serde_json::json!({ "device_id": device, "method": "phone", "confirmed": true }))
                .expect("check"),
        )
        .await
        .map(drop),
        "archive::patient_copy" => {
            archive::patient_copy(tx, actor, "no-such-loan", archive::Shown::AsPdf).await.map(drop)
        }
        "archive::return_receipt" => {
            archive::return_receipt(tx, actor, "no-such-loan", archive::Shown::AsPdf).await.map(drop)
        }
        "archive::certificate" => archive::certificate(tx, actor, "no-such-wipe").await.map(drop),
        "archive::ehr_for_loan" => archive::ehr_for_loan(tx, actor, "no-such-loan").await.map(drop),
        "archive::ehr_for_patient" => archive::ehr_for_patient(tx, actor, "no-such-patient").await.map(drop),
        "drafts::mine" => drafts::mine(tx, actor).await.map(drop),
        "drafts::open" => drafts::open(tx, actor, "no-such-draft").await.map(drop),
        "drafts::sent" => drafts::sent(tx, actor, "no-such-key").await,
        "import::import_devices" => import::import_devices(tx, actor, b"asset_tag,model\n").await.map(drop),
        "inspection::read" => inspection::read(tx, actor, "2026-10-01", "2026-10-31", 90).await.map(drop),
        "inspection::csv" => inspection::csv(tx, actor, "2026-10-01", "2026-10-31", 90).await.map(drop),
        "incidents::report_lost" => incidents::report_lost(tx, actor, device, "lost", "").await.map(drop),
        "incidents::mark_found" => incidents::mark_found(tx, actor, device).await.map(drop),
        "incidents::write_off" => incidents::write_off(tx, actor, device).await.map(drop),
        "incidents::send_to_maintenance" => incidents::send_to_maintenance(tx, actor, device).await.map(drop),
        "incidents::back_from_maintenance" => incidents::back_from_maintenance(tx, actor, device).await.map(drop),
        "labels::rotate_token" => labels::rotate_token(tx, actor, device).await.map(drop),
        "labels::print_batch" => {
            let layout = lending::labels::LAYOUTS[0];
            labels::print_batch(tx, actor, &[device.to_owned()], &layout, "https://help.example.jp").await.map(drop)
        }
        "loans::check_out" => loans::check_out(tx, actor, b.check_out_request(0, &[0]), &key).await.map(drop),
        "loans::check_out_once" => {
            loans::check_out_once(tx, actor, b.check_out_request(0, &[0]), &key, idem).await.map(drop)
        }
        "loans::return_device" => loans::return_device(tx, actor, ret()).await.map(drop),
        "loans::return_device_once" => loans::return_device_once(tx, actor, ret(), idem).await.map(drop),
        "loans::withdraw_consent" => loans::withdraw_consent(tx, actor, "no-such-loan", "山田", "理由").await,
        "loans::view" => loans::view(tx, actor, &key, "no-such-loan", window).await.map(drop),
        "loans::extend" => loans::extend(tx, actor, "no-such-loan", day, "理由").await.map(drop),
        "loans::extend_once" => loans::extend_once(tx, actor, "no-such-loan", day, "理由", idem).await.map(drop),
        "loans::void" => loans::void(tx, actor, "no-such-loan", "理由", window).await.map(drop),
        "loans::void_once" => loans::void_once(tx, actor, "no-such-loan", "理由", window, idem).await.map(drop),
        "loans::return_kit" => loans::return_kit(tx, actor, kit()).await.map(drop),
        "loans::return_kit_once" => loans::return_kit_once(tx, actor, kit(), idem).await.map(drop),
        "monthly::read" => monthly::read(tx, actor, Some(Month { year: 2026, month: 10 })).await.map(drop),
        "offline::request_enrolment" => {
            // A valid P-256 point (the generator's), so only the policy can refuse it.
            let public = "BGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWT-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";
            offline::request_enrolment(tx, actor, "スマホ", "ES256", public).await.map(drop)
        }
        "offline::approve_enrolment" => offline::approve_enrolment(tx, actor, "no-such-phone").await.map(drop),
        "offline::revoke_enrolment" => offline::revoke_enrolment(tx, actor, "no-such-phone").await.map(drop),
        "offline::enrolments" => offline::enrolments(tx, actor, &b.nurse2.user_id).await.map(drop),
        "offline::enrolments(mine)" => offline::enrolments(tx, actor, me).await.map(drop),
        "offline::conflicts" => offline::conflicts(tx, actor, true).await.map(drop),
        "offline::conflicts(mine)" => offline::conflicts(tx, actor, false).await.map(drop),
        "offline::prepare" => offline::prepare(tx, actor, "no-such-phone", &[], &[]).await.map(drop),
        "offline::resolve_conflict" => {
            offline::resolve_conflict(tx, actor, "no-such-conflict", "対応済み").await.map(drop)
        }
        "outbox::failed" => outbox::failed(tx, actor).await.map(drop),
        "outbox::retry" => outbox::retry(tx, actor, "no-such-mail").await,
        "outbox::dismiss" => outbox::dismiss(tx, actor, "no-such-mail").await,
        "oversight::audit_log" => oversight::audit_log(tx, actor, &audit::Search::default(), 10).await.map(drop),
        "patients::search" => patients::search(tx, actor, "山田", 1, 10).await.map(drop),
        "patients::view" => patients::view(tx, actor, &b.patients[0]).await.map(drop),
        "patients::record" => patients::record(tx, actor, &b.patients[0]).await.map(drop),
        "patients::edit" => {
            let e = PatientEdit {
                name: "試験 花子".into(), kana: "しけん はなこ".into(), birth_date: String::new()
            };
            patients::edit(tx, actor, &b.patients[0], &e).await.map(drop)
        }
        "registry::save_institution" => {
            let inst = store::registry::institution(tx).await?.ok_or(Error::NotFound)?;
            registry::save_institution(tx, actor, &inst).await
        }
        "registry::create_vendor" => {
            let vendor = store::registry::Vendor {
                id: String::new(),
                name: format!("ベンダー {unique}"),
                support_phone: "03-0000-3333".into(),
                support_hours: String::new(),
                support_hours_en: String::new(),
                email: String::new(),
                contract_ref: String::new(),
                responsibility_notes: String::new(),
                may_access_data: false,
                review_date: None,
            };
            registry::create_vendor(tx, actor, vendor).await.map(drop)
        }
        "registry::add_document_version" => {
            registry::add_document_version(tx, actor, &b.model_id, document()).await.map(drop)
        }
        "registry::create_model" => {
            let mut model = store::registry::model(tx, &b.model_id).await?.ok_or(Error::NotFound)?;
            model.model_name = format!("機種 {unique}");
            registry::create_model(tx, actor, model, document()).await.map(drop)
        }
        "registry::register_device" => {
            let d = NewDevice::tagged(format!("P-{n:04}"), b.model_id.clone());
            registry::register_device(tx, actor, d).await.map(drop)
        }
        "registry::create_patient" => {
            let p = NewPatient {
                number: format!("Q-{n:06}"),
                name: "試験 花子".into(),
                kana: String::new(),
                phone: String::new(),
                birth_date: String::new(),
            };
            registry::create_patient(tx, actor, p).await.map(drop)
        }
        "reports::resolve" => reports::resolve(tx, actor, "no-such-report", "電話で確認").await,
        "users::add_user" => {
            let u = NewUser {
                login: format!("policy{n}"),
                name: "試験".into(),
                role: Role::Nurse,
                site: String::new(),
                email: String::new(),
            };
            users::add_user(tx, actor, u).await.map(drop)
        }
        "users::create_token" => users::create_token(tx, actor, TokenFor::Myself, "試験", 30).await.map(drop),
        "users::tokens" => users::tokens(tx, actor, true).await.map(drop),
        "users::tokens(mine)" => users::tokens(tx, actor, false).await.map(drop),
        "users::revoke_token" => users::revoke_token(tx, actor, "no-such-token").await,
        "users::token_to_revoke" => users::token_to_revoke(tx, actor, "no-such-token").await.map(drop),
        "users::staff_member" => users::staff_member(tx, actor, &b.nurse2.user_id).await.map(drop),
        "wipes::record" => wipes::record(tx, actor, wipe()).await.map(drop),
        "wipes::record_once" => wipes::record_once(tx, actor, wipe(), idem).await.map(drop),
        "wipes::may_verify" => wipes::may_verify(actor),
        "wipes::verify" => wipes::verify(tx, actor, "no-such-wipe").await.map(drop),
        "wipes::verify_once" => wipes::verify_once(tx, actor, "no-such-wipe", idem).await.map(drop),
        "custody::of_open_loan" => custody::of_open_loan(tx, actor, device).await.map(drop),
        "devices::history" => lending::service::devices::history(tx, actor, device).await.map(drop),
        "incidents::list" => incidents::list(tx, actor, Some("open"), None).await.map(drop),
        "incidents::get" => incidents::get(tx, actor, "no-such-incident").await.map(drop),
        "loans::list" => {
            let f = store::loans::LoanFilter { state: Some(store::loans::LoanState::Open), ..Default::default() };
            loans::list(tx, actor, &f, 1, 50).await.map(drop)
        }
        "oversight::audit_page" => {
            let f = oversight::AuditFilter { from: "2026-10-01".into(), ..Default::default() };
            oversight::audit_page(tx, actor, &f, 10).await.map(drop)
        }
        "registry::model" => registry::model(tx, actor, &b.model_id).await.map(drop),
        "registry::documents" => registry::documents(tx, actor, &b.model_id).await.map(drop),
        "registry::document" => registry::document(tx, actor, &b.document_id).await.map(drop),
        "reports::list_for" => reports::list_for(tx, actor, true).await.map(drop),
        "reports::get" => reports::get(tx, actor, "no-such-report").await.map(drop),
        "users::list" => users::list(tx, actor).await.map(drop),
        "users::me" => users::me(tx, actor).await.map(drop),
        "wipes::list" => wipes::list(tx, actor, Some(device), true).await.map(drop),
        "wipes::get" => wipes::get(tx, actor, "no-such-wipe").await.map(drop),
        other => panic!("no call written for {other}"),
    }
}

fn session_of(user_id: &str) -> store::sessions::Session {
    let at = lending::testing::test_now();
    store::sessions::Session {
        id_hash: "policy-test-session".into(),
        user_id: user_id.into(),
        stage: store::sessions::Stage::Full,
        csrf_token: String::new(),
        created_at: at,
        last_seen_at: at,
    }
}

async fn head_seq(store: &Store) -> i64 {
    let mut tx = store.read().await.unwrap();
    audit::head(&mut tx).await.unwrap().0
}

both_dbs!(
    async fn every_service_entry_point_is_authorised_for_every_role(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 2).await;
        let public = Actor { role: Principal::Public, ..Actor::anonymous("qr") };
        let nobody = Actor::anonymous("203.0.113.9");
        let callers = [&b.nurse, &b.admin, &b.auditor, &public, &nobody];
        let mut n = 0;
        for (name, action) in ENTRIES {
            for actor in callers {
                n += 1;
                let before = head_seq(&store).await;
                let got = call(name, &store, &b, actor, n).await;
                let allowed = lending::policy::allows(actor.role, *action);
                if allowed {
                    // Past the policy: any answer but a refusal (or a storage failure, which would hide one).
                    assert!(
                        !matches!(got, Err(Error::Forbidden | Error::Db(_))),
                        "{name} as {} ({action:?}): {got:?}",
                        actor.role
                    );
                } else {
                    assert!(matches!(got, Err(Error::Forbidden)), "{name} let {} through: {got:?}", actor.role);
                    assert_eq!(head_seq(&store).await, before, "{name} wrote for {} before refusing", actor.role);
                }
            }
        }
    }
);

/// Every public function of `lending::service` that takes an `&Actor` is in [`ENTRIES`].
#[test]
fn every_entry_point_that_acts_for_someone_is_listed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/service");
    let mut missing = Vec::new();
    let mut found = 0;
    for file in std::fs::read_dir(dir).unwrap() {
        let path = file.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        for (i, _) in source.match_indices("\npub ") {
            let rest = &source[i + 5..];
            let rest = rest.strip_prefix("async ").unwrap_or(rest);
            let Some(rest) = rest.strip_prefix("fn ") else { continue };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let signature = &rest[..rest.find('{').unwrap_or(rest.len())];
            if signature.contains("&Actor") {
                found += 1;
                let entry = format!("{module}::{name}");
                if !ENTRIES.iter().any(|(e, _)| *e == entry) {
                    missing.push(entry);
                }
            }
        }
    }
    assert!(found >= 50, "found only {found} entry points: is the scan still right?");
    assert!(missing.is_empty(), "service entry points the policy test does not call: {missing:?}");
}
