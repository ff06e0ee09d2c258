//! `server demo`: a realistic clinic (SPEC §3, §8), seeded through the same domain operations
//! as real use, back-dated over 90 days so that some loans are overdue, some returned, wiped,
//! lost or in maintenance. The texts live in `demo/clinic.toml`, which clinics can copy.

use chrono::{Duration, NaiveDate};
use serde::Deserialize;

use crate::actor::{Actor, Credential, Role};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::service::loans::{CheckOutRequest, ConsentInput, ReturnRequest};
use crate::service::registry::{NewDevice, NewModel, NewPatient};
use crate::service::wipes::WipeRequest;
use crate::service::{incidents, loans, registry, users, wipes};
use crate::store::registry::{Institution, Vendor};
use crate::store::Store;

const CLINIC: &str = include_str!("../demo/clinic.toml");

#[derive(Deserialize)]
struct Clinic {
    institution: Institution,
    vendors: Vec<VendorText>,
    models: Vec<ModelText>,
    patients: Vec<PatientText>,
    staff: Vec<StaffText>,
}

#[derive(Deserialize)]
struct VendorText {
    key: String,
    name: String,
    support_phone: String,
    support_hours: String,
    support_hours_en: String,
    email: String,
    contract_ref: String,
    responsibility_notes: String,
    may_access_data: bool,
    review_date: NaiveDate,
}

#[derive(Deserialize)]
struct ModelText {
    key: String,
    /// The vendor's key in this file.
    vendor: String,
    #[serde(flatten)]
    model: NewModel,
}

#[derive(Deserialize)]
struct PatientText {
    number: String,
    name: String,
    kana: String,
    #[serde(default)]
    phone: String,
}

#[derive(Deserialize)]
struct StaffText {
    login: String,
    name: String,
    role: Role,
    site: String,
}

/// What `seed` created, for the command line's summary.
#[derive(Debug, Default)]
pub struct Seeded {
    pub devices: usize,
    pub patients: usize,
    pub loans: usize,
    /// Login, role and the temporary password (changed at first sign-in).
    pub staff: Vec<(String, Role, String)>,
}

/// A drawn signature as SVG strokes, as the check-out screen stores it.
pub const DEMO_SIGNATURE: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 300 100\">\
<path d=\"M20 70 C40 20 60 20 70 60 S100 90 120 40 L140 70 M160 30 L165 75 M180 50 C200 30 220 80 240 45\" \
fill=\"none\" stroke=\"#000\" stroke-width=\"3\" stroke-linecap=\"round\"/></svg>";

/// Seeds the demo clinic. Refuses (`Ok(None)`) when the database already has an institution,
/// so it never mixes demo data into a clinic's real records.
pub async fn seed(store: &Store, receipts: &crate::receipts::ReceiptKey) -> Result<Option<Seeded>> {
    // The seeding future is large (many steps); boxed so callers' futures stay small.
    Box::pin(seed_clinic(store, receipts)).await
}

async fn seed_clinic(store: &Store, receipts: &crate::receipts::ReceiptKey) -> Result<Option<Seeded>> {
    let clinic: Clinic = toml::from_str(CLINIC).map_err(|e| Error::Other(anyhow::anyhow!("demo/clinic.toml: {e}")))?;
    {
        let mut tx = store.read().await?;
        if crate::store::registry::institution(&mut tx).await?.is_some() {
            return Ok(None);
        }
    }
    // Back-date: the demo's history runs from 90 days ago until now.
    let now = store.clock().now();
    let clock = Clock::manual(now - Duration::days(90));
    let db = store.with_clock(clock.clone());
    let today = now.with_timezone(&chrono_tz::Asia::Tokyo).date_naive();
    let at = |days_ago: i64, hour: i64| {
        // Office hours in Tokyo (UTC+9): 09:00 JST is 00:00 UTC.
        let day = now.date_naive() - Duration::days(days_ago);
        let t = day.and_hms_opt(0, 0, 0).map_or(now, |d| d.and_utc()) + Duration::hours(hour);
        clock.set(t.min(now));
    };
    let cli = Actor::cli();
    let mut seeded = Seeded::default();

    at(90, 0);
    let mut tx = db.begin().await?;
    let mut inst = clinic.institution;
    registry::save_institution(&mut tx, &cli, &inst).await?;
    inst.public_base_url.clear();
    let mut staff = Vec::new();
    for s in &clinic.staff {
        let (u, temporary) = users::add_user(
            &mut tx,
            &cli,
            users::NewUser {
                login: s.login.clone(),
                name: s.name.clone(),
                role: s.role,
                site: s.site.clone(),
                email: format!("{}@example.jp", s.login),
            },
        )
        .await?;
        seeded.staff.push((u.login.clone(), u.role, temporary));
        // The demo's made-up staff act as if signed in (they verify each other's wipes).
        staff.push(Actor::user(&u.id, &u.login, u.role, "demo").with_credential(Credential::Session("demo".into())));
    }
    let nurses: Vec<&Actor> = staff.iter().filter(|a| a.role == Role::Nurse).collect();
    let admins: Vec<&Actor> = staff.iter().filter(|a| a.role == Role::Admin).collect();
    let (Some(&n1), Some(&n2), Some(&n3), Some(&a1), Some(&a2)) =
        (nurses.first(), nurses.get(1), nurses.get(2), admins.first(), admins.get(1))
    else {
        return Err(Error::Other(anyhow::anyhow!("demo/clinic.toml needs 3 nurses and 2 admins")));
    };
    let mut vendor_ids = std::collections::HashMap::new();
    for v in clinic.vendors {
        let created = registry::create_vendor(
            &mut tx,
            a1,
            Vendor {
                id: String::new(),
                name: v.name,
                support_phone: v.support_phone,
                support_hours: v.support_hours,
                support_hours_en: v.support_hours_en,
                email: v.email,
                contract_ref: v.contract_ref,
                responsibility_notes: v.responsibility_notes,
                may_access_data: v.may_access_data,
                review_date: Some(v.review_date),
            },
        )
        .await?;
        vendor_ids.insert(v.key, created.id);
    }
    let mut model_ids = std::collections::HashMap::new();
    for m in clinic.models {
        let mut new_model = m.model;
        new_model.vendor_id = vendor_ids.get(&m.vendor).cloned();
        let (wipe_steps, firmware) = (new_model.wipe_steps.clone(), new_model.latest_firmware.clone());
        let (model, document) = new_model.into_parts();
        let created = registry::create_model(&mut tx, a1, model, document).await?;
        model_ids.insert(m.key.clone(), (created, wipe_steps, firmware));
    }
    let mut devices = std::collections::HashMap::new();
    for (key, prefix, site) in [("ecg", "ECG", "本院"), ("spo2", "SPO2", "本院"), ("gateway", "GW", "北サテライト")]
    {
        let Some((model, _, firmware)) = model_ids.get(key) else {
            return Err(Error::Other(anyhow::anyhow!("demo/clinic.toml has no model {key}")));
        };
        for n in 1..=8 {
            let tag = format!("{prefix}-{n:03}");
            // Two devices per model run firmware behind the model's latest.
            let fw = if n >= 7 { "1.0.0".to_owned() } else { firmware.clone() };
            let d = registry::register_device(
                &mut tx,
                a1,
                NewDevice {
                    asset_tag: tag.clone(),
                    serial: format!("SN{}{:05}", prefix, 24_000 + n * 37),
                    model_id: model.id.clone(),
                    firmware_version: fw,
                    firmware_updated_on: Some(today - Duration::days(120)),
                    site: site.into(),
                    location: "機器保管庫".into(),
                    notes: String::new(),
                },
            )
            .await?;
            devices.insert(tag, d.id);
        }
    }
    let mut patients = Vec::new();
    for p in clinic.patients {
        let created = registry::create_patient(
            &mut tx,
            a1,
            NewPatient { number: p.number, name: p.name, kana: p.kana, phone: p.phone, birth_date: String::new() },
        )
        .await?;
        patients.push(created.id);
    }
    tx.commit().await?;
    seeded.devices = devices.len();
    seeded.patients = patients.len();

    let dev = |tag: &str| devices.get(tag).cloned().unwrap_or_default();
    let pat = |i: usize| patients.get(i).cloned().unwrap_or_default();
    let steps = |key: &str| model_ids.get(key).map(|m| m.1.clone()).unwrap_or_default();
    let due = |days_from_today: i64| today + Duration::days(days_from_today);

    // Each step is one transaction, as at the clinic.
    let check_out = |nurse: &Actor, patient: String, tags: &[&str], due_on: NaiveDate| {
        let req = CheckOutRequest {
            patient_id: patient,
            device_ids: tags.iter().map(|t| dev(t)).collect(),
            due_on,
            purpose: "在宅での生体情報モニタリング".into(),
            consent: None,
        };
        (nurse.clone(), req)
    };
    let mut loans_made = 0;
    macro_rules! lend {
        ($days_ago:expr, $nurse:expr, $patient:expr, $tags:expr, $due:expr) => {{
            at($days_ago, 1);
            let (nurse, mut req) = check_out($nurse, pat($patient), $tags, due($due));
            let mut tx = db.begin().await?;
            let mut doc_ids = Vec::new();
            for id in &req.device_ids {
                if let Some(d) = crate::store::devices::get(&mut tx, id).await? {
                    if let Some(m) = crate::store::registry::model(&mut tx, &d.model_id).await? {
                        if let Some(doc) = m.current_document_id {
                            if !doc_ids.contains(&doc) {
                                doc_ids.push(doc);
                            }
                        }
                    }
                }
            }
            req.consent = Some(ConsentInput {
                signer_name: if $patient % 3 == 0 { "家族 代筆".into() } else { "本人".into() },
                relationship: if $patient % 3 == 0 { "family".into() } else { "self".into() },
                relationship_note: String::new(),
                signature_svg: DEMO_SIGNATURE.into(),
                document_ids: doc_ids,
                proxy: None,
            });
            loans::check_out(&mut tx, &nurse, req, receipts).await?;
            tx.commit().await?;
            loans_made += 1;
        }};
    }
    macro_rules! give_back {
        ($days_ago:expr, $nurse:expr, $tag:expr, $damaged:expr) => {{
            at($days_ago, 2);
            let mut tx = db.begin().await?;
            loans::return_device(
                &mut tx,
                $nurse,
                ReturnRequest {
                    device_id: dev($tag),
                    damaged: $damaged,
                    accessories_complete: !$damaged,
                    cleaned: true,
                    condition_notes: if $damaged { "外装にひび割れあり".into() } else { String::new() },
                    returned_by_name: "ご家族".into(),
                    signature_svg: None,
                },
            )
            .await?;
            tx.commit().await?;
        }};
    }
    macro_rules! wipe {
        ($days_ago:expr, $by:expr, $verifier:expr, $tag:expr, $model:expr, $method:expr) => {{
            at($days_ago, 3);
            let mut tx = db.begin().await?;
            let w = wipes::record(
                &mut tx,
                $by,
                WipeRequest {
                    device_id: dev($tag),
                    method: $method.into(),
                    tool: "メーカー純正リセット手順".into(),
                    tool_version: "2.1".into(),
                    checklist: steps($model),
                    evidence_ref: format!("WIPE-{}-{}", $tag, $days_ago),
                    passed: true,
                    destination: if $method == "destroy" {
                        "廃棄（委託業者）".into()
                    } else {
                        "再利用".into()
                    },
                    notes: String::new(),
                },
            )
            .await?;
            tx.commit().await?;
            if let Some(v) = $verifier {
                at($days_ago, 4);
                let mut tx = db.begin().await?;
                wipes::verify(&mut tx, v, &w.id).await?;
                tx.commit().await?;
            }
        }};
    }
    macro_rules! step {
        ($days_ago:expr, |$tx:ident| $body:expr) => {{
            at($days_ago, 5);
            let mut tx = db.begin().await?;
            let $tx = &mut tx;
            $body.await?;
            tx.commit().await?;
        }};
    }

    lend!(80, n1, 0, &["ECG-001", "GW-001"], -50);
    lend!(78, n2, 1, &["SPO2-001"], -60);
    give_back!(61, n2, "SPO2-001", false);
    wipe!(60, n2, Some(a1), "SPO2-001", "spo2", "clear");
    give_back!(52, n1, "ECG-001", false);
    give_back!(52, n1, "GW-001", false);
    wipe!(51, n1, Some(a1), "ECG-001", "ecg", "clear");
    wipe!(51, n1, Some(a1), "GW-001", "gateway", "purge");
    lend!(45, n3, 2, &["SPO2-002"], -30);
    lend!(40, n1, 4, &["ECG-003", "GW-003"], -10);
    lend!(35, n2, 9, &["ECG-005"], 5);
    lend!(33, n3, 3, &["GW-006", "ECG-007"], 10);
    give_back!(31, n3, "SPO2-002", false);
    wipe!(30, n3, Some(a2), "SPO2-002", "spo2", "clear");
    lend!(30, n2, 5, &["SPO2-003"], -5);
    lend!(28, n1, 2, &["ECG-006"], -14);
    lend!(25, n3, 1, &["SPO2-007"], -10);
    lend!(20, n1, 0, &["GW-007"], 40);
    lend!(15, n2, 8, &["GW-005", "SPO2-005"], 15);
    give_back!(14, n1, "ECG-006", true);
    step!(13, |tx| incidents::send_to_maintenance(tx, a1, &dev("ECG-006")));
    give_back!(11, n3, "SPO2-007", true);
    wipe!(10, n1, Some(a2), "SPO2-007", "spo2", "destroy");
    lend!(10, n3, 6, &["ECG-004", "GW-004"], 20);
    lend!(9, n2, 1, &["SPO2-006"], 5);
    step!(8, |tx| incidents::report_lost(
        tx,
        n1,
        &dev("GW-007"),
        "stolen",
        "訪問時、玄関先に置いた機器が見当たらないとご家族から連絡"
    ));
    step!(5, |tx| incidents::report_lost(
        tx,
        n3,
        &dev("GW-006"),
        "lost",
        "転居の際に紛失した可能性あり。ご家族が捜索中"
    ));
    step!(3, |tx| incidents::write_off(tx, a2, &dev("GW-007")));
    lend!(3, n2, 7, &["SPO2-004"], 2);
    give_back!(2, n2, "ECG-005", false);
    give_back!(1, n2, "SPO2-006", false);
    wipe!(1, n3, None::<&Actor>, "SPO2-006", "spo2", "clear");

    seeded.loans = loans_made;
    Ok(Some(seeded))
}
