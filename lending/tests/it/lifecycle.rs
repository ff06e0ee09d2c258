//! Random sequences of lifecycle operations against a reference model, on both backends.
//! After every step: the database agrees with the model, and the invariants hold
//! (never two open loans per device; on_loan ⇔ exactly one open loan with consent;
//! available ⇒ the last return has a verified wipe; the audit chain verifies).

use std::collections::HashMap;

use lending::service::{incidents, loans, registry, wipes};
use lending::store::{devices, loans as loan_rows};
use lending::testing::{seed_basic, Basic, TestDb};
use lending::{Actor, Backend, DeviceStatus, Error, Store};
use proptest::prelude::*;

const DEVICES: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    CheckOut {
        patient: usize,
        devices: Vec<usize>,
    },
    Return {
        device: usize,
    },
    Wipe {
        device: usize,
        by: usize,
        passed: bool,
        destroy: bool,
    },
    Verify {
        device: usize,
        by: usize,
    },
    Lost {
        device: usize,
    },
    Found {
        device: usize,
    },
    WriteOff {
        device: usize,
    },
    MaintenanceOut {
        device: usize,
    },
    MaintenanceBack {
        device: usize,
    },
    /// Void the device's open loan, as the lending nurse (0), another nurse (1), an admin (2)
    /// or an auditor (3).
    Void {
        device: usize,
        by: usize,
    },
    /// Time passes beyond the void window.
    Wait,
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0..DEVICES;
    prop_oneof![
        3 => (0..3usize, proptest::collection::vec(0..DEVICES, 1..3)).prop_map(|(patient, devices)| Op::CheckOut { patient, devices }),
        3 => d.clone().prop_map(|device| Op::Return { device }),
        3 => (d.clone(), 0..4usize, prop::bool::weighted(0.8), prop::bool::weighted(0.1))
            .prop_map(|(device, by, passed, destroy)| Op::Wipe { device, by, passed, destroy }),
        3 => (d.clone(), 0..4usize).prop_map(|(device, by)| Op::Verify { device, by }),
        1 => d.clone().prop_map(|device| Op::Lost { device }),
        1 => d.clone().prop_map(|device| Op::Found { device }),
        1 => d.clone().prop_map(|device| Op::WriteOff { device }),
        1 => d.clone().prop_map(|device| Op::MaintenanceOut { device }),
        1 => d.clone().prop_map(|device| Op::MaintenanceBack { device }),
        2 => (d, 0..4usize).prop_map(|(device, by)| Op::Void { device, by }),
        1 => Just(Op::Wait),
    ]
}

/// What the rules say each device should be.
#[derive(Default)]
struct Model {
    status: Vec<DeviceStatus>,
    /// Bumped on each status change: a wipe only counts for the epoch it was recorded in.
    epoch: Vec<u32>,
    /// The newest unverified wipe per device: (wipe id, performer, passed, destroy, epoch).
    pending: HashMap<usize, (String, usize, bool, bool, u32)>,
    /// Each device's latest kit (an index into `kits`).
    kit: Vec<Option<usize>>,
    /// Every kit lent: its devices and when.
    kits: Vec<(Vec<usize>, chrono::DateTime<chrono::Utc>)>,
}

impl Model {
    fn set(&mut self, d: usize, s: DeviceStatus) {
        self.status[d] = s;
        self.epoch[d] += 1;
    }
}

/// One case: fresh devices in the shared test database, then the operations.
async fn run_case(store: &Store, b: &Basic, case: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let staff: [&Actor; 4] = [&b.nurse, &b.nurse2, &b.admin, &b.auditor];
    let mut ids = Vec::new();
    let mut tx = store.begin().await.unwrap();
    for n in 0..DEVICES {
        let d = registry::register_device(
            &mut tx,
            &b.admin,
            registry::NewDevice::tagged(format!("C{case}-{n}"), b.model_id.clone()),
        )
        .await
        .unwrap();
        ids.push(d.id);
    }
    tx.commit().await.unwrap();
    let mut m = Model {
        status: vec![DeviceStatus::Available; DEVICES],
        epoch: vec![0; DEVICES],
        kit: vec![None; DEVICES],
        ..Default::default()
    };
    let window = chrono::Duration::minutes(30);

    for op in ops {
        store.clock().advance(chrono::Duration::seconds(1));
        let mut tx = store.begin().await.unwrap();
        // (the outcome, whether the model allows it)
        let (outcome, allowed): (Result<(), Error>, bool) = match &op {
            Op::CheckOut { patient, devices } => {
                let mut req = b.check_out_request(*patient, &[]);
                req.device_ids = devices.iter().map(|&i| ids[i].clone()).collect();
                let distinct = devices.iter().collect::<std::collections::BTreeSet<_>>().len() == devices.len();
                let ok = distinct && devices.iter().all(|&d| m.status[d] == DeviceStatus::Available);
                let r = loans::check_out(&mut tx, &b.nurse, req, &lending::testing::receipt_key()).await.map(|_| ());
                if r.is_ok() {
                    m.kits.push((devices.clone(), store.clock().now()));
                    for &d in devices {
                        m.set(d, DeviceStatus::OnLoan);
                        m.kit[d] = Some(m.kits.len() - 1);
                    }
                }
                (r, ok)
            }
            Op::Return { device } => {
                let ok = m.status[*device] == DeviceStatus::OnLoan;
                let r = loans::return_device(
                    &mut tx,
                    &b.nurse2,
                    loans::ReturnRequest { device_id: ids[*device].clone(), ..Default::default() },
                )
                .await
                .map(|_| ());
                if r.is_ok() {
                    m.set(*device, DeviceStatus::AwaitingWipe);
                }
                (r, ok)
            }
            Op::Wipe { device, by, passed, destroy } => {
                // Destruction only from awaiting_wipe (maintenance → retired is not a lifecycle step).
                let ok = *by != 3
                    && (m.status[*device] == DeviceStatus::AwaitingWipe
                        || m.status[*device] == DeviceStatus::Maintenance && !*destroy);
                let r = wipes::record(
                    &mut tx,
                    staff[*by],
                    wipes::WipeRequest {
                        device_id: ids[*device].clone(),
                        method: if *destroy { "destroy" } else { "clear" }.into(),
                        tool: "factory reset".into(),
                        tool_version: "1".into(),
                        checklist: b.wipe_steps.clone(),
                        evidence_ref: String::new(),
                        passed: *passed,
                        destination: String::new(),
                        notes: String::new(),
                    },
                )
                .await;
                let r = r.map(|w| {
                    m.pending.insert(*device, (w.id, *by, *passed, *destroy, m.epoch[*device]));
                });
                (r, ok)
            }
            Op::Verify { device, by } => {
                let Some((wipe_id, performer, passed, destroy, epoch)) = m.pending.get(device).cloned() else {
                    continue;
                };
                let ok = *by != 3
                    && *by != performer
                    && epoch == m.epoch[*device]
                    && matches!(m.status[*device], DeviceStatus::AwaitingWipe | DeviceStatus::Maintenance);
                let r = wipes::verify(&mut tx, staff[*by], &wipe_id).await.map(|_| ());
                if r.is_ok() {
                    m.pending.remove(device);
                    if passed {
                        m.set(*device, if destroy { DeviceStatus::Retired } else { DeviceStatus::Available });
                    }
                }
                (r, ok)
            }
            Op::Lost { device } => {
                let ok = m.status[*device] == DeviceStatus::OnLoan;
                let r = incidents::report_lost(&mut tx, &b.nurse, &ids[*device], "lost", "").await.map(|_| ());
                if r.is_ok() {
                    m.set(*device, DeviceStatus::Lost);
                }
                (r, ok)
            }
            Op::Found { device }
            | Op::WriteOff { device }
            | Op::MaintenanceOut { device }
            | Op::MaintenanceBack { device } => {
                let (from, to) = match &op {
                    Op::Found { .. } => (DeviceStatus::Lost, DeviceStatus::AwaitingWipe),
                    Op::WriteOff { .. } => (DeviceStatus::Lost, DeviceStatus::Retired),
                    Op::MaintenanceOut { .. } => (DeviceStatus::AwaitingWipe, DeviceStatus::Maintenance),
                    _ => (DeviceStatus::Maintenance, DeviceStatus::AwaitingWipe),
                };
                let ok = m.status[*device] == from;
                let id = &ids[*device];
                let r = match &op {
                    Op::Found { .. } => incidents::mark_found(&mut tx, &b.admin, id).await,
                    Op::WriteOff { .. } => incidents::write_off(&mut tx, &b.admin, id).await,
                    Op::MaintenanceOut { .. } => incidents::send_to_maintenance(&mut tx, &b.admin, id).await,
                    _ => incidents::back_from_maintenance(&mut tx, &b.admin, id).await,
                };
                if r.is_ok() {
                    m.set(*device, to);
                }
                (r, ok)
            }
            Op::Void { device, by } => {
                // Allowed: the whole kit still out on this loan, within the window, by the
                // lending nurse (check-outs here are all by `nurse`) or an admin.
                let kit = m.kit[*device].filter(|_| m.status[*device] == DeviceStatus::OnLoan);
                let ok = kit.is_some_and(|k| {
                    let (devs, at) = &m.kits[k];
                    devs.iter().all(|&d| m.kit[d] == Some(k) && m.status[d] == DeviceStatus::OnLoan)
                        && store.clock().now() <= *at + window
                        && (*by == 0 || *by == 2)
                });
                let loan = loan_rows::open_loan_of_device(&mut tx, &ids[*device]).await.unwrap();
                let loan_id = loan.map_or_else(|| "no-such-loan".to_owned(), |l| l.id);
                let r = loans::void(&mut tx, staff[*by], &loan_id, "取り違え", window).await.map(|_| ());
                if r.is_ok() {
                    if let Some(k) = kit {
                        for d in m.kits[k].0.clone() {
                            m.set(d, DeviceStatus::Available);
                        }
                    }
                }
                (r, ok)
            }
            Op::Wait => {
                store.clock().advance(window + chrono::Duration::minutes(1));
                (Ok(()), true)
            }
        };
        match &outcome {
            Ok(()) => tx.commit().await.unwrap(),
            Err(e) => {
                prop_assert!(!e.is_internal(), "{op:?} failed with an internal error: {e}");
                drop(tx);
            }
        }
        prop_assert_eq!(outcome.is_ok(), allowed, "{:?} -> {:?}", op, outcome.err().map(|e| e.message_en()));

        let mut tx = store.read().await.unwrap();
        for (i, id) in ids.iter().enumerate() {
            let d = devices::get(&mut tx, id).await.unwrap().unwrap();
            prop_assert_eq!(d.status, m.status[i], "device {} after {:?}", i, op);
        }
        let v = loan_rows::invariant_violations(&mut tx).await.unwrap();
        prop_assert!(v.is_clean(), "{:?} after {:?}", v, op);
    }
    let verified = lending::store::audit::verify(store).await.unwrap();
    prop_assert!(verified.is_ok(), "{:?}", verified);
    Ok(())
}

fn lifecycle_holds_under_random_operations(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (db, store, basic) = rt.block_on(async {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let basic = seed_basic(&store, 0).await;
        (db, store, basic)
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let config = ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..40))| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        rt.block_on(run_case(&store, &basic, n, ops))?;
    });
    rt.block_on(store.close());
    drop(db);
}

#[test]
fn lifecycle_holds_under_random_operations_sqlite() {
    lifecycle_holds_under_random_operations(Backend::Sqlite);
}

#[test]
fn lifecycle_holds_under_random_operations_postgres() {
    lifecycle_holds_under_random_operations(Backend::Postgres);
}
