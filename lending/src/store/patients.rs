//! Patients: minimal PHI (院内ID, name, kana, optional phone and date of birth). Reads are
//! audited by the service that makes them (`service::patients`).

use chrono::NaiveDate;

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Patient {
    pub id: String,
    pub number: String,
    pub name: String,
    /// Full-width katakana (folded at input).
    pub kana: String,
    pub phone: String,
    pub birth_date: Option<NaiveDate>,
}

const COLUMNS: &str = "id, number, name, kana, phone, birth_date";

pub async fn insert(tx: &mut Tx, p: &Patient) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query(
        "INSERT INTO patients (id, number, name, kana, phone, birth_date, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)")
        .bind(&p.id).bind(&p.number).bind(&p.name).bind(&p.kana).bind(&p.phone).bind(p.birth_date).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Saves what staff may change on a record (name, kana, date of birth); the 院内ID stays.
pub async fn update(tx: &mut Tx, p: &Patient) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query("UPDATE patients SET name = $1, kana = $2, birth_date = $3, updated_at = $4 WHERE id = $5")
        .bind(&p.name).bind(&p.kana).bind(p.birth_date).bind(now).bind(&p.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(tx: &mut Tx, id: &str) -> Result<Option<Patient>> {
    let sql = format!("SELECT {COLUMNS} FROM patients WHERE id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, Patient>(&sql).bind(id).fetch_optional(c).await)?)
}

/// What a search looks for, each already folded the way the column is compared (see
/// [`Search::new`]); an empty search finds everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// LIKE pattern for the 院内ID without hyphens and spaces, lower case.
    number: String,
    /// LIKE pattern for the name without spaces, lower case.
    name: String,
    /// LIKE pattern for the kana (katakana) without spaces.
    kana: String,
}

impl Search {
    /// From what was typed: NFKC (full-width digits, half-width kana), hiragana → katakana,
    /// spaces ignored; a number typed with or without its leading zeros is found.
    pub fn new(q: &str) -> Self {
        use unicode_normalization::UnicodeNormalization as _;
        let plain = |s: &str| -> String { s.chars().filter(|c| !c.is_whitespace() && !"%_".contains(*c)).collect() };
        let folded = plain(&crate::ids::fold_kana(q));
        let lower = folded.to_lowercase();
        // Names keep their hiragana (a name may be written in it).
        let name = plain(&q.nfkc().collect::<String>()).to_lowercase();
        let number: String = lower.chars().filter(|c| *c != '-').collect();
        let number = if number.chars().all(|c| c.is_ascii_digit()) && !number.is_empty() {
            match number.trim_start_matches('0') {
                "" => "0".to_owned(),
                n => n.to_owned(),
            }
        } else {
            number
        };
        Self { number: format!("%{number}%"), name: format!("%{name}%"), kana: format!("%{folded}%") }
    }
}

const MATCHES: &str = "(REPLACE(REPLACE(lower(number), '-', ''), ' ', '') LIKE $1 \
    OR REPLACE(lower(name), ' ', '') LIKE $2 OR REPLACE(kana, ' ', '') LIKE $3)";

/// One page of the patients a search finds, by 院内ID.
pub async fn search(tx: &mut Tx, s: &Search, limit: i64, offset: i64) -> Result<Vec<Patient>> {
    let sql = format!("SELECT {COLUMNS} FROM patients WHERE {MATCHES} ORDER BY number LIMIT $4 OFFSET $5");
    Ok(on!(tx, c => sqlx::query_as::<_, Patient>(&sql)
        .bind(&s.number).bind(&s.name).bind(&s.kana).bind(limit).bind(offset)
        .fetch_all(c)
        .await)?)
}

/// How many patients a search finds.
pub async fn count(tx: &mut Tx, s: &Search) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM patients WHERE {MATCHES}");
    Ok(on!(tx, c => sqlx::query_scalar::<_, i64>(&sql).bind(&s.number).bind(&s.name).bind(&s.kana).fetch_one(c).await)?)
}

pub async fn by_number(tx: &mut Tx, number: &str) -> Result<Option<Patient>> {
    let sql = format!("SELECT {COLUMNS} FROM patients WHERE number = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, Patient>(&sql).bind(number.trim()).fetch_optional(c).await)?)
}
