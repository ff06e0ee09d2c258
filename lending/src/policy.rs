//! Who may do what (SPEC §6): the one place the role rules live. Every service entry point that
//! acts for someone calls [`authorize`] before it reads or writes anything, so a new handler or
//! API route cannot forget a rule; pages only use [`allows`] to hide what a role may not use.

use std::fmt;

use crate::actor::{Actor, Role};
use crate::error::{Error, Result};

/// Whom an action is taken by, as the audit chain records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A signed-in staff member or the owner of an API token.
    Staff(Role),
    /// The operator at the command line (`server user add`, `server demo`, background work).
    Cli,
    /// The public service, acting for whoever scanned a label (problem reports).
    Public,
    /// Nobody known yet: a failed sign-in or token.
    Nobody,
}

impl Principal {
    /// The text the audit chain records (and hashes) for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff(role) => role.as_str(),
            Self::Cli => "system",
            Self::Public => "public",
            Self::Nobody => "",
        }
    }

    /// The staff role, if a staff member acts.
    pub fn role(self) -> Option<Role> {
        match self {
            Self::Staff(role) => Some(role),
            Self::Cli | Self::Public | Self::Nobody => None,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<Role> for Principal {
    fn eq(&self, other: &Role) -> bool {
        *self == Self::Staff(*other)
    }
}

/// What someone wants to do, in the grain the role rules are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read devices, loans, patients, the registry, patient reports and the dashboard, and print
    /// labels (reads of patient data are audited by the service that reads them).
    Read,
    /// The lending work: lend, return, extend, withdraw, void, wipe and verify, incidents, custody
    /// checks, label rotation, answering patient reports, registering devices and patients.
    Operate,
    /// Change the registry: the institution, vendors, device models and explanation documents.
    EditRegistry,
    /// Add, disable and reset staff accounts; revoke anyone's token; resend or set aside mail.
    ManageStaff,
    /// Look after one's own account: password, sessions, second factor, one's own API tokens.
    OwnAccount,
    /// Read the staff list, every token, undeliverable mail, the audit log and the monthly report,
    /// and verify the audit chain.
    Oversee,
}

impl Action {
    /// Every action (the service-entry × role test walks them all).
    pub const ALL: [Self; 6] =
        [Self::Read, Self::OwnAccount, Self::Operate, Self::EditRegistry, Self::ManageStaff, Self::Oversee];
}

/// Whether `principal` may do `action`. Exhaustive on purpose: a new role or action must be
/// decided here, never fall into a default.
pub fn allows(principal: Principal, action: Action) -> bool {
    let role = match principal {
        Principal::Staff(role) => role,
        // The command line is run by whoever operates the server.
        Principal::Cli => return true,
        Principal::Public | Principal::Nobody => return false,
    };
    match action {
        Action::Read | Action::OwnAccount => match role {
            Role::Nurse | Role::Admin | Role::Auditor => true,
        },
        // Auditors read everything and change nothing.
        Action::Operate => match role {
            Role::Nurse | Role::Admin => true,
            Role::Auditor => false,
        },
        Action::EditRegistry | Action::ManageStaff => match role {
            Role::Admin => true,
            Role::Nurse | Role::Auditor => false,
        },
        Action::Oversee => match role {
            Role::Admin | Role::Auditor => true,
            Role::Nurse => false,
        },
    }
}

/// Whether `actor` may correct (void) a loan lent by `lent_by`: the nurse who lent it, an admin,
/// or the command line.
pub fn may_correct_loan_of(actor: &Actor, lent_by: &str) -> bool {
    match actor.role {
        Principal::Staff(Role::Admin) | Principal::Cli => true,
        Principal::Staff(Role::Nurse) => actor.user_id == lent_by,
        Principal::Staff(Role::Auditor) | Principal::Public | Principal::Nobody => false,
    }
}

/// `Ok` if the actor may do `action`, else [`Error::Forbidden`] (403).
pub fn authorize(actor: &Actor, action: Action) -> Result<()> {
    if allows(actor.role, action) {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_spec_section_6() {
        use Action::{EditRegistry, ManageStaff, Operate, Oversee, OwnAccount, Read};
        let staff = |r| Principal::Staff(r);
        let expected = [
            (staff(Role::Nurse), [true, true, true, false, false, false]),
            (staff(Role::Admin), [true, true, true, true, true, true]),
            (staff(Role::Auditor), [true, true, false, false, false, true]),
            (Principal::Cli, [true; 6]),
            (Principal::Public, [false; 6]),
            (Principal::Nobody, [false; 6]),
        ];
        for (who, row) in expected {
            for (action, want) in [Read, OwnAccount, Operate, EditRegistry, ManageStaff, Oversee].into_iter().zip(row) {
                assert_eq!(allows(who, action), want, "{who:?} {action:?}");
            }
        }
    }
}
