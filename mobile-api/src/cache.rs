//! Public help data, cached in memory. The database's `public_version` moves whenever help
//! data may have changed; the cache checks it at most every `check_every` and empties itself
//! when it moved, so an edit or a rotated label shows within that interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use lending::store::public::{self, DeviceHelp, PublicInstitution};
use lending::{Result, Store};

use crate::i18n::Lang;

/// What a token leads to.
pub enum Lookup {
    Found(Arc<DeviceHelp>),
    /// A rotated label or a retired device.
    Revoked,
    Unknown,
}

#[derive(Default)]
struct Cached {
    version: i64,
    institution: Option<Arc<PublicInstitution>>,
    devices: HashMap<String, Arc<DeviceHelp>>,
    /// Rendered pages by token, then language, each for the form-token period it was rendered
    /// in: the page is the same for everyone scanning that label in that period. Keyed by the
    /// token alone so a request looks its page up with the token it holds (no key to build).
    pages: HashMap<String, LabelPages>,
}

/// One label's rendered pages: (form-token period, page) per language.
#[derive(Default)]
struct LabelPages {
    ja: Option<(i64, Rendered)>,
    en: Option<(i64, Rendered)>,
}

impl LabelPages {
    fn slot(&mut self, lang: Lang) -> &mut Option<(i64, Rendered)> {
        if lang.is_en() {
            &mut self.en
        } else {
            &mut self.ja
        }
    }

    fn get(&self, lang: Lang, period: i64) -> Option<&Rendered> {
        let slot = if lang.is_en() { &self.en } else { &self.ja };
        slot.as_ref().filter(|(p, _)| *p == period).map(|(_, page)| page)
    }
}

/// A rendered help page and its entity tag (a scan from the same phone within the period
/// revalidates with `If-None-Match` and gets a 304 without the body).
#[derive(Clone)]
pub struct Rendered {
    pub body: axum::body::Bytes,
    pub etag: axum::http::HeaderValue,
}

impl Rendered {
    pub fn new(html: String) -> Result<Self, axum::http::header::InvalidHeaderValue> {
        let digest = lending::ids::sha256_bytes(html.as_bytes());
        let etag = axum::http::HeaderValue::try_from(format!("\"{}\"", &digest[..32]))?;
        Ok(Self { body: axum::body::Bytes::from(html), etag })
    }
}

pub struct HelpCache {
    cached: RwLock<Cached>,
    last_check: Mutex<Option<Instant>>,
    check_every: Duration,
}

/// Bounds memory: a full cache starts over (tokens are many, but clinics have thousands).
const MAX_ENTRIES: usize = 50_000;

impl HelpCache {
    pub fn new(check_every: Duration) -> Self {
        Self { cached: RwLock::new(Cached::default()), last_check: Mutex::new(None), check_every }
    }

    async fn refresh_if_due(&self, store: &Store) -> Result<()> {
        {
            let mut last = self.last_check.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < self.check_every) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let mut tx = store.read().await?;
        let version = public::version(&mut tx).await?;
        let mut cached = self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cached.version != version {
            *cached = Cached { version, ..Cached::default() };
        }
        Ok(())
    }

    pub async fn institution(&self, store: &Store) -> Result<Option<Arc<PublicInstitution>>> {
        self.refresh_if_due(store).await?;
        if let Some(i) = &self.cached.read().unwrap_or_else(std::sync::PoisonError::into_inner).institution {
            return Ok(Some(i.clone()));
        }
        let mut tx = store.read().await?;
        let found = public::institution(&mut tx).await?.map(Arc::new);
        self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner).institution.clone_from(&found);
        Ok(found)
    }

    /// The label's rendered page for `lang` in the form-token `period`, if one is cached, after
    /// the same freshness check as [`Self::device`]: a page is cached only for a label found at
    /// the cached `public_version`, so a hit stands for that lookup (the hot path of a scan).
    pub async fn fresh_page(&self, store: &Store, token: &str, lang: Lang, period: i64) -> Result<Option<Rendered>> {
        self.refresh_if_due(store).await?;
        Ok(self.page(token, lang, period))
    }

    /// A rendered page, if one is cached (call after [`Self::device`], which refreshes).
    pub fn page(&self, token: &str, lang: Lang, period: i64) -> Option<Rendered> {
        let cached = self.cached.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.pages.get(token).and_then(|p| p.get(lang, period)).cloned()
    }

    /// The `public_version` the cache holds; read it before the lookups a page is rendered
    /// from, and hand it to [`Self::keep_page`].
    pub fn version(&self) -> i64 {
        self.cached.read().unwrap_or_else(std::sync::PoisonError::into_inner).version
    }

    /// Keeps the page rendered for `token`, `lang` and `period` (replacing an older period's),
    /// unless the cache moved past `version` meanwhile: a page rendered before a change (a
    /// rotated label) must not be served after it.
    pub fn keep_page(&self, version: i64, token: &str, lang: Lang, period: i64, page: Rendered) {
        let mut cached = self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cached.version != version {
            return;
        }
        if cached.pages.len() >= MAX_ENTRIES && !cached.pages.contains_key(token) {
            cached.pages.clear();
        }
        *cached.pages.entry(token.to_owned()).or_default().slot(lang) = Some((period, page));
    }

    pub async fn device(&self, store: &Store, token: &str) -> Result<Lookup> {
        self.refresh_if_due(store).await?;
        if let Some(d) = self.cached.read().unwrap_or_else(std::sync::PoisonError::into_inner).devices.get(token) {
            return Ok(Lookup::Found(d.clone()));
        }
        let mut tx = store.read().await?;
        // Read the version in the same snapshot as the row: a row read before a change (a
        // rotated label) must not be cached after the cache moved on to the new version.
        let version = public::version(&mut tx).await?;
        if let Some(help) = public::device_help(&mut tx, token).await? {
            let help = Arc::new(help);
            let mut cached = self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cached.devices.len() >= MAX_ENTRIES {
                cached.devices.clear();
            }
            if cached.version == version {
                cached.devices.insert(token.to_owned(), help.clone());
            }
            return Ok(Lookup::Found(help));
        }
        Ok(if public::is_revoked(&mut tx, token).await? { Lookup::Revoked } else { Lookup::Unknown })
    }
}
