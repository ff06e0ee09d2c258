//! The staff web pages (server-rendered, Japanese first, no JavaScript needed).

pub mod account;
pub mod admin;
pub mod archive;
pub mod assets;
pub mod consents;
pub mod devices;
pub mod home;
pub mod imports;
pub mod incidents;
pub mod inspection;
pub mod labels;
pub mod loan_record;
pub mod loans;
pub mod mail;
pub mod offline;
pub mod oversight;
pub mod patients;
pub mod registry;
pub mod reports;
pub mod scan;
pub mod sign_in;

use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .merge(sign_in::routes())
        .merge(account::routes())
        .merge(home::routes())
        .merge(admin::routes())
        .merge(reports::routes())
        .merge(labels::routes())
        .merge(loans::routes())
        .merge(loan_record::routes())
        .merge(devices::routes())
        .merge(patients::routes())
        .merge(assets::routes())
        .merge(registry::routes())
        .merge(incidents::routes())
        .merge(consents::routes())
        .merge(imports::routes())
        .merge(scan::routes())
        .merge(oversight::routes())
        .merge(inspection::routes())
        .merge(archive::routes())
        .merge(mail::routes())
        .merge(offline::routes())
}

/// A form with nothing but the CSRF token (sign-out buttons and the like).
#[derive(serde::Deserialize)]
pub struct Empty {}

/// A one-field code form (second factor, enrolment).
#[derive(serde::Deserialize)]
pub struct CodeForm {
    pub code: String,
}
