//! CSV import of 10,000 devices: one bad row imports nothing and is named; the clean file
//! imports every row. On both backends.

use std::fmt::Write as _;

use lending::service::import::import_devices;
use lending::store::devices;
use lending::testing::{seed_basic, TestDb};
use lending::{both_dbs, Actor, Error};

fn csv(rows: usize, bad_line: Option<usize>) -> String {
    let mut out =
        String::from("\u{feff}資産番号,シリアル番号,機種,ファームウェア,ファームウェア更新日,拠点,保管場所,備考\n");
    for n in 0..rows {
        let line = n + 2;
        let date = if Some(line) == bad_line { "2026-13-45" } else { "2026/04/01" };
        let _ = writeln!(out, "IMP-{n:05},SN{n},パルスオキシメータ T1,1.0,{date},本院,棚{},\"メモ, {n}\"", n % 20);
    }
    out
}

both_dbs!(
    async fn ten_thousand_rows_all_or_nothing(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        seed_basic(&store, 0).await;
        let cli = Actor::cli();

        let mut tx = store.begin().await.unwrap();
        let err = import_devices(&mut tx, &cli, csv(10_000, Some(5_001)).as_bytes()).await.unwrap_err();
        drop(tx);
        let Error::Validation(rows) = err else { panic!("a validation error") };
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rows[0].message_ja.starts_with("5001行目") && rows[0].message_ja.contains("2026-13-45"), "{:?}", rows[0]);
        let mut tx = store.read().await.unwrap();
        assert!(devices::list(&mut tx, None).await.unwrap().is_empty(), "nothing from that file was imported");
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        assert_eq!(import_devices(&mut tx, &cli, csv(10_000, None).as_bytes()).await.unwrap(), 10_000);
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let all = devices::list(&mut tx, None).await.unwrap();
        assert_eq!(all.len(), 10_000);
        let d = all.iter().find(|d| d.asset_tag == "IMP-00042").unwrap();
        assert_eq!((d.notes.as_str(), d.firmware_updated_on.map(|x| x.to_string())), ("メモ, 42", Some("2026-04-01".to_owned())));
        assert_eq!(lending::store::audit::count_action(&mut tx, "device.import").await.unwrap(), 1);
        drop(tx);

        // Importing the same file again: every row is a duplicate, nothing changes.
        let mut tx = store.begin().await.unwrap();
        let Err(Error::Validation(rows)) = import_devices(&mut tx, &cli, csv(10_000, None).as_bytes()).await else { panic!("duplicates refused") };
        assert!(rows.last().unwrap().message_ja.contains("ほかに"), "long error lists are summarised");
        drop(tx);
        assert!(lending::store::audit::verify(&store).await.unwrap().is_ok());
        store.close().await;
    }
);

#[test]
fn excel_shift_jis_files_are_read() {
    let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("資産番号,機種\nA-1,心電図パッチ\n");
    assert_eq!(lending::service::import::decode(&bytes), "資産番号,機種\nA-1,心電図パッチ\n");
    assert_eq!(lending::service::import::decode("\u{feff}a,b".as_bytes()), "a,b");
}
