//! TOTP (RFC 6238) over the workspace's HMAC crates: the whole algorithm is a dozen lines
//! (RFC 4226 dynamic truncation of an HMAC of the step counter), so a TOTP crate would add
//! URL/QR/base32 code nubis does not need.

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// The device's parameters; the clouds' virtual MFA devices use the defaults (SHA-1,
/// 6 digits, 30 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    pub algorithm: TotpAlgorithm,
    /// 6 to 8.
    pub digits: u32,
    /// Seconds per step (T0 = 0).
    pub period: u64,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

/// Steps accepted either side of the current one (clock drift).
pub const WINDOW: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The code is not the device's code for the current step or a neighbouring one.
    #[error("the MFA code is not valid")]
    Invalid,
    /// The code was already used in its step.
    #[error("the MFA code was already used")]
    Reused,
    /// The device's parameters are unusable (digits outside 6..=8, zero period, empty seed).
    #[error("the MFA device is misconfigured")]
    BadParams,
}

impl TotpError {
    /// A stable name for dialects and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invalid => "MfaCodeInvalid",
            Self::Reused => "MfaCodeReused",
            Self::BadParams => "MfaDeviceMisconfigured",
        }
    }
}

fn check(params: &TotpParams, seed: &[u8]) -> Result<(), TotpError> {
    if !(6..=8).contains(&params.digits) || params.period == 0 || seed.is_empty() {
        return Err(TotpError::BadParams);
    }
    Ok(())
}

fn mac_of(seed: &[u8], alg: TotpAlgorithm, counter: u64) -> Vec<u8> {
    let msg = counter.to_be_bytes();
    // new_from_slice accepts any key length for HMAC; the seed was checked non-empty.
    match alg {
        TotpAlgorithm::Sha1 => Hmac::<sha1::Sha1>::new_from_slice(seed)
            .map(|m| m.chain_update(msg).finalize().into_bytes().to_vec()),
        TotpAlgorithm::Sha256 => Hmac::<sha2::Sha256>::new_from_slice(seed)
            .map(|m| m.chain_update(msg).finalize().into_bytes().to_vec()),
        TotpAlgorithm::Sha512 => Hmac::<sha2::Sha512>::new_from_slice(seed)
            .map(|m| m.chain_update(msg).finalize().into_bytes().to_vec()),
    }
    .unwrap_or_default()
}

/// The HOTP value (RFC 4226 §5.3) for `counter`, zero-padded to `digits`.
fn hotp(seed: &[u8], params: &TotpParams, counter: u64) -> Result<String, TotpError> {
    check(params, seed)?;
    let mac = mac_of(seed, params.algorithm, counter);
    let offset = usize::from(mac.last().copied().ok_or(TotpError::BadParams)? & 0x0f);
    let bytes: [u8; 4] = mac
        .get(offset..offset + 4)
        .and_then(|s| s.try_into().ok())
        .ok_or(TotpError::BadParams)?;
    let bin = u32::from_be_bytes(bytes) & 0x7fff_ffff;
    let value = bin % 10u32.pow(params.digits);
    Ok(format!("{value:0width$}", width = params.digits as usize))
}

/// The step of `unix_time` (times before the epoch are step 0).
pub fn step_at(params: &TotpParams, unix_time: i64) -> u64 {
    u64::try_from(unix_time).unwrap_or(0) / params.period.max(1)
}

/// The code for `unix_time`.
pub fn generate(seed: &[u8], params: &TotpParams, unix_time: i64) -> Result<String, TotpError> {
    hotp(seed, params, step_at(params, unix_time))
}

/// Verifies `code` against the steps `now - 1 ..= now + 1`. A code whose step is not after
/// `last_used_step` is refused as reused (RFC 6238 §5.2: one verification per step). On
/// success returns the matched step, which the caller stores as the new last used step.
pub fn verify(
    seed: &[u8],
    params: &TotpParams,
    code: &str,
    unix_time: i64,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    check(params, seed)?;
    if code.len() != params.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Invalid);
    }
    let now = step_at(params, unix_time);
    for step in now.saturating_sub(WINDOW)..=now.saturating_add(WINDOW) {
        let expected = hotp(seed, params, step)?;
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            if last_used_step.is_some_and(|last| step <= last) {
                return Err(TotpError::Reused);
            }
            return Ok(step);
        }
    }
    Err(TotpError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED1: &[u8] = b"12345678901234567890";
    const SEED256: &[u8] = b"12345678901234567890123456789012";
    const SEED512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn p(algorithm: TotpAlgorithm, digits: u32) -> TotpParams {
        TotpParams {
            algorithm,
            digits,
            period: 30,
        }
    }

    /// RFC 6238 Appendix B.
    #[test]
    fn rfc6238_appendix_b() {
        let table: &[(i64, &str, &str, &str)] = &[
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for &(t, sha1, sha256, sha512) in table {
            assert_eq!(
                generate(SEED1, &p(TotpAlgorithm::Sha1, 8), t).unwrap(),
                sha1,
                "{t}"
            );
            assert_eq!(
                generate(SEED256, &p(TotpAlgorithm::Sha256, 8), t).unwrap(),
                sha256,
                "{t}"
            );
            assert_eq!(
                generate(SEED512, &p(TotpAlgorithm::Sha512, 8), t).unwrap(),
                sha512,
                "{t}"
            );
            // Six digits are the last six of the eight.
            assert_eq!(
                generate(SEED1, &p(TotpAlgorithm::Sha1, 6), t).unwrap(),
                &sha1[2..],
                "{t}"
            );
        }
    }

    #[test]
    fn window_is_one_step_each_side() {
        let params = TotpParams::default();
        let t = 1_234_567_890;
        let code = generate(SEED1, &params, t).unwrap();
        let step = step_at(&params, t);
        assert_eq!(verify(SEED1, &params, &code, t, None), Ok(step));
        assert_eq!(verify(SEED1, &params, &code, t + 30, None), Ok(step));
        assert_eq!(verify(SEED1, &params, &code, t - 30, None), Ok(step));
        assert_eq!(
            verify(SEED1, &params, &code, t + 60, None),
            Err(TotpError::Invalid)
        );
        assert_eq!(
            verify(SEED1, &params, &code, t - 60, None),
            Err(TotpError::Invalid)
        );
    }

    #[test]
    fn a_code_is_accepted_once_per_step() {
        let params = TotpParams::default();
        let t = 1_111_111_111;
        let code = generate(SEED1, &params, t).unwrap();
        let step = verify(SEED1, &params, &code, t, None).unwrap();
        assert_eq!(
            verify(SEED1, &params, &code, t, Some(step)),
            Err(TotpError::Reused)
        );
        // An older step's code is refused too once a later one was used.
        let older = generate(SEED1, &params, t - 30).unwrap();
        assert_eq!(
            verify(SEED1, &params, &older, t, Some(step)),
            Err(TotpError::Reused)
        );
        // The next step's code is fine.
        let next = generate(SEED1, &params, t + 30).unwrap();
        assert_eq!(
            verify(SEED1, &params, &next, t + 30, Some(step)),
            Ok(step + 1)
        );
    }

    #[test]
    fn malformed_codes_and_params() {
        let params = TotpParams::default();
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６", "-12345"] {
            assert_eq!(
                verify(SEED1, &params, bad, 59, None),
                Err(TotpError::Invalid),
                "{bad}"
            );
        }
        let bad = [
            TotpParams {
                digits: 5,
                ..params
            },
            TotpParams {
                digits: 9,
                ..params
            },
            TotpParams {
                period: 0,
                ..params
            },
        ];
        for b in bad {
            assert_eq!(
                verify(SEED1, &b, "123456", 59, None),
                Err(TotpError::BadParams)
            );
        }
        assert_eq!(
            verify(b"", &params, "123456", 59, None),
            Err(TotpError::BadParams)
        );
        assert_eq!(step_at(&params, -5), 0);
    }
}
