//! Time is injected so tests can move it (overdue loans, reminders, idle timeouts).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, SubsecRound, Utc};

#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<Mutex<DateTime<Utc>>>>);

impl Clock {
    /// The real clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that stands still until moved; for tests and for back-dating the demo.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self(Some(Arc::new(Mutex::new(at.trunc_subsecs(6)))))
    }

    /// Now, to the microsecond: PostgreSQL keeps microseconds, so both backends read back
    /// exactly what was written.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            // The one place that reads the real clock (clippy.toml forbids it elsewhere).
            #[allow(clippy::disallowed_methods)]
            None => Utc::now().trunc_subsecs(6),
            Some(t) => *t.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    /// Whether this is a manual clock (tests, the demo's back-dating).
    pub fn is_manual(&self) -> bool {
        self.0.is_some()
    }

    /// Today's date in Japan, where due dates are set.
    pub fn today_tokyo(&self) -> NaiveDate {
        self.now().with_timezone(&chrono_tz::Asia::Tokyo).date_naive()
    }

    /// Moves a manual clock forward; does nothing to the real clock.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.0 {
            let mut t = t.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *t += by;
        }
    }

    /// Sets a manual clock; does nothing to the real clock.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(t) = &self.0 {
            *t.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at.trunc_subsecs(6);
        }
    }
}
