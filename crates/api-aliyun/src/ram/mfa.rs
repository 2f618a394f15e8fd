//! RAM virtual MFA devices: CreateVirtualMFADevice, BindMFADevice. Binding matters for
//! console logins only (D9): API callers' `acs:MFAPresent` is false.

use super::{check_name, internal};
use crate::Ctx;
use crate::actions::{Out, obj};
use crate::errors::ApiError;
use crate::params::Params;
use nubis_engine::{CredentialError, Engine};
use serde_json::json;

pub(crate) async fn create_virtual_mfa_device(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let name = p.required("VirtualMFADeviceName")?;
    check_name("VirtualMFADeviceName", &name, 64, b".-")?;
    let (serial, seed) = engine
        .create_virtual_mfa(&ctx.principal.account, &name)
        .await
        .map_err(|e| match e {
            CredentialError::Conflict(_) => ApiError::new(
                409,
                "EntityAlreadyExists.VirtualMFADevice",
                "The virtual MFA device does already EXIST.",
            ),
            CredentialError::Invalid { .. } => ApiError::new(
                409,
                "LimitExceeded.VirtualMFADevice",
                "The count of virtual MFA devices beyond the current limits.",
            ),
            e => internal(e),
        })?;
    let qr = qr_png(&otpauth_uri(&name, &seed)).map_err(|e| {
        ApiError::new(
            500,
            "InternalError",
            format!("the QR code could not be drawn: {e}"),
        )
    })?;
    Ok(obj(json!({"VirtualMFADevice": {
        "SerialNumber": serial,
        "Base32StringSeed": seed,
        "QRCodePNG": qr,
    }})))
}

/// What an authenticator app scans: the device's TOTP seed (RFC 6238 defaults: SHA-1, six
/// digits, 30 s) under its name.
fn otpauth_uri(name: &str, seed: &str) -> String {
    format!("otpauth://totp/nubis:{name}?secret={seed}&issuer=nubis")
}

/// Pixels per QR module and the quiet zone around the code, in modules.
const QR_SCALE: usize = 4;
const QR_QUIET: usize = 4;

/// `uri` as a QR code in a grayscale PNG, base64 (RAM's `QRCodePNG`).
fn qr_png(uri: &str) -> Result<String, String> {
    use base64::Engine as _;
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| e.to_string())?;
    let width = code.width();
    let side = (width + 2 * QR_QUIET) * QR_SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (x, y) = (
            (i % width + QR_QUIET) * QR_SCALE,
            (i / width + QR_QUIET) * QR_SCALE,
        );
        for row in y..y + QR_SCALE {
            if let Some(run) = pixels.get_mut(row * side + x..row * side + x + QR_SCALE) {
                run.fill(0);
            }
        }
    }
    let side = u32::try_from(side).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side, side);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

fn code(p: &Params, name: &str) -> Result<String, ApiError> {
    let c = p.required(name)?;
    if c.len() != 6 || !c.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::new(
            400,
            "InvalidParameter.AuthenticationCode.Format",
            "The parameter - \"AuthenticationCode\" MUST be 6 numbers.",
        ));
    }
    Ok(c)
}

pub(crate) async fn bind_mfa_device(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let account = &ctx.principal.account;
    let serial = p.required("SerialNumber")?;
    let user = p.required("UserName")?;
    let c1 = code(p, "AuthenticationCode1")?;
    let c2 = code(p, "AuthenticationCode2")?;
    if engine.sub_user(account, &user).is_err() {
        return Err(ApiError::new(
            404,
            "EntityNotExist.User",
            "The user does not exist.",
        ));
    }
    engine
        .bind_virtual_mfa(account, &serial, &user, &c1, &c2)
        .await
        .map_err(|e| match e {
            CredentialError::NotFound(_) => ApiError::new(
                404,
                "EntityNotExist.VirtualMFADevice",
                "The virtual MFA device does not exist.",
            ),
            CredentialError::Conflict(m) if m.starts_with("user") => ApiError::new(
                409,
                "EntityAlreadyExists.User.MFADevice",
                "The user has already bound an MFA device.",
            ),
            CredentialError::Conflict(_) => ApiError::new(
                409,
                "EntityAlreadyExists.VirtualMFADevice.User",
                "The virtual MFA device has already been bound to a user.",
            ),
            CredentialError::Invalid { .. } => ApiError::new(
                403,
                "CheckAuthenticationCodeFail",
                "The parameter - \"AuthenticationCode\" is inccorrect.",
            ),
            e => internal(e),
        })?;
    Ok(Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// The PNG holds exactly the QR code of the URI: every module's centre pixel is dark
    /// where the code's module is, and the quiet zone is light.
    #[test]
    fn the_png_is_the_qr_code_of_the_otpauth_uri() {
        let uri = otpauth_uri("dev-phone", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
        let png_bytes = base64::engine::general_purpose::STANDARD
            .decode(qr_png(&uri).unwrap())
            .unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        let code = qrcode::QrCode::new(uri.as_bytes()).unwrap();
        let width = code.width();
        let side = (width + 2 * QR_QUIET) * QR_SCALE;
        assert_eq!((info.width as usize, info.height as usize), (side, side));
        let pixel = |mx: usize, my: usize| buf[(my * QR_SCALE + 2) * side + mx * QR_SCALE + 2];
        for (i, color) in code.to_colors().iter().enumerate() {
            let (mx, my) = (i % width + QR_QUIET, i / width + QR_QUIET);
            assert_eq!(
                pixel(mx, my) == 0,
                *color == qrcode::Color::Dark,
                "module {i}"
            );
        }
        assert!((0..width + 2 * QR_QUIET).all(|m| pixel(m, 0) == 255 && pixel(0, m) == 255));
    }
}
