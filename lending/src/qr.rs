//! QR codes as SVG (labels, TOTP enrolment).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::error::{Error, Result};

/// An SVG QR code for `data`, `size_px` wide at least, with a quiet zone. Medium error
/// correction survives label wear while keeping the modules large.
pub fn svg(data: &str, size_px: u32) -> Result<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| Error::Other(anyhow::anyhow!("QR code: {e}")))?;
    Ok(code.render::<svg::Color<'_>>().min_dimensions(size_px, size_px).quiet_zone(true).build())
}
