//! The device lifecycle (SPEC §4). The database triggers enforce the same table, so a bug
//! above this layer cannot put a device in an impossible state.

use std::fmt;

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Available,
    OnLoan,
    AwaitingWipe,
    Lost,
    Maintenance,
    Retired,
}

impl DeviceStatus {
    pub const ALL: [Self; 6] =
        [Self::Available, Self::OnLoan, Self::AwaitingWipe, Self::Lost, Self::Maintenance, Self::Retired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::OnLoan => "on_loan",
            Self::AwaitingWipe => "awaiting_wipe",
            Self::Lost => "lost",
            Self::Maintenance => "maintenance",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Available => "貸出可能",
            Self::OnLoan => "貸出中",
            Self::AwaitingWipe => "データ消去待ち",
            Self::Lost => "紛失",
            Self::Maintenance => "修理・保守中",
            Self::Retired => "廃棄済み",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::OnLoan => "on loan",
            Self::AwaitingWipe => "awaiting data wipe",
            Self::Lost => "lost",
            Self::Maintenance => "in maintenance",
            Self::Retired => "retired",
        }
    }

    /// Whether SPEC §4 allows `self → to`.
    pub fn can_become(self, to: Self) -> bool {
        use DeviceStatus::{Available, AwaitingWipe, Lost, Maintenance, OnLoan, Retired};
        matches!(
            (self, to),
            (Available, OnLoan)
                | (OnLoan, AwaitingWipe | Lost)
                | (Lost, AwaitingWipe | Retired)
                | (AwaitingWipe, Available | Maintenance | Retired)
                | (Maintenance, AwaitingWipe | Available)
        )
    }

    /// `Ok` if allowed, otherwise the typed error the HTTP edge turns into 409.
    pub fn check(self, to: Self) -> crate::Result<()> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(Error::IllegalTransition { from: self, to })
        }
    }
}

/// Decoding from the `status` column (the CHECK constraint keeps other values out).
impl TryFrom<String> for DeviceStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown device status {s:?}"))
    }
}

impl fmt::Display for DeviceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_transitions_are_exactly_these() {
        let allowed: Vec<(DeviceStatus, DeviceStatus)> = DeviceStatus::ALL
            .into_iter()
            .flat_map(|a| DeviceStatus::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(allowed.len(), 10);
        assert!(DeviceStatus::Available.check(DeviceStatus::AwaitingWipe).is_err());
        assert!(DeviceStatus::Retired.check(DeviceStatus::Available).is_err());
        for s in DeviceStatus::ALL {
            assert_eq!(DeviceStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn refusal_explains_in_japanese_and_english() {
        let e = DeviceStatus::OnLoan.check(DeviceStatus::OnLoan).unwrap_err();
        assert!(e.message_ja().contains("貸出中"));
        assert!(e.message_en().contains("on loan"));
    }
}
