//! Glance image data: `PUT /v2/images/{id}/file` streamed to the image directory with its
//! MD5 and SHA-512 computed on the way and the operator's size cap (`image_size_cap`)
//! checked on every chunk, and `GET …/file` (the listener streams the file).
//!
//! The listener hands an upload's body over chunk by chunk ([`Chunks`]) and only after the
//! request was authenticated and admitted: no byte of it is read, let alone buffered, for a
//! caller without a valid token, an image that is not queued or a declared size over the cap.

use super::{Ctx, fail};
use crate::Reply;
use md5::{Digest, Md5};
use nubis_core::images::{Image, ImageData};
use sha2::Sha512;
use std::future::Future;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Glance's `image_size_cap` default: 1 TiB.
pub const DEFAULT_SIZE_CAP: u64 = 1 << 40;

/// Why a body stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// No chunk came within the listener's body timeout.
    TooSlow,
    /// The connection broke (reset, bad chunking).
    Broken,
}

/// A request body, chunk by chunk (`Ok(None)`: its end).
pub trait Chunks: Send {
    type Chunk: AsRef<[u8]> + Send;
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Self::Chunk>, Cut>> + Send;
}

/// A body the listener already read (tests, and the in-process API).
pub struct Buffered<'a>(pub Option<&'a [u8]>);

impl<'a> Chunks for Buffered<'a> {
    type Chunk = &'a [u8];
    async fn next_chunk(&mut self) -> Result<Option<&'a [u8]>, Cut> {
        Ok(self.0.take())
    }
}

/// A qcow2 image's virtual size from its header (magic `QFI\xfb`, size at bytes 24..32).
pub fn qcow2_virtual_size(head: &[u8]) -> Option<u64> {
    if head.get(..4)? != b"QFI\xfb" {
        return None;
    }
    let b: [u8; 8] = head.get(24..32)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// An upload in progress: the partial file and the digests so far.
struct Upload {
    tmp: PathBuf,
    file: tokio::fs::File,
    md5: Md5,
    sha: Sha512,
    size: u64,
    head: Vec<u8>,
}

impl Upload {
    async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if self.head.len() < 32 {
            let take = (32 - self.head.len()).min(chunk.len());
            self.head
                .extend_from_slice(chunk.get(..take).unwrap_or_default());
        }
        self.md5.update(chunk);
        self.sha.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk).await
    }
}

impl Ctx<'_> {
    /// Serve an upload whose body is already in memory.
    pub(super) async fn upload_buffered(&self, staged: bool) -> Reply {
        let body = self.req.body;
        self.upload(&mut Buffered(Some(body)), staged).await
    }

    /// `PUT /file` (`staged` false: the image becomes active) or `PUT /stage` (the data
    /// waits, the image uploading, for `POST /import`).
    pub(crate) async fn upload<C: Chunks>(&self, body: &mut C, staged: bool) -> Reply {
        let ct = self
            .req
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if ct != "application/octet-stream" {
            return fail(
                415,
                &format!(
                    "Content-Type {ct} is not supported: image data is application/octet-stream."
                ),
            );
        }
        let cap = self.api.image_size_cap;
        let declared = self
            .req
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let img = match self.image() {
            Ok(i) => i,
            Err(r) => return r,
        };
        if declared.is_some_and(|n| n > cap) {
            return too_large(cap);
        }
        let engine = &self.api.engine;
        let (Some(dir), Some(path)) = (engine.image_dir(), engine.image_path(&img.id)) else {
            return fail(
                503,
                "Image data cannot be kept: the server has no image directory.",
            );
        };
        match engine.begin_image_upload(&self.p, self.id()).await {
            Ok(_) => {}
            Err(nubis_core::DomainError::ImageState { status, .. }) => {
                return fail(
                    409,
                    &format!(
                        "Image status transition from {} to saving is not allowed",
                        status.glance()
                    ),
                );
            }
            Err(nubis_core::DomainError::ImageNotOwned(_)) => {
                return fail(
                    403,
                    &format!("Not allowed to upload image data for image {}", img.uuid),
                );
            }
            Err(e) => return super::domain(e, self.id()),
        }
        let tmp = dir.join(format!(
            "{}.img.part-{}",
            img.id,
            uuid::Uuid::new_v4().simple()
        ));
        let opened = match tokio::fs::create_dir_all(dir).await {
            Ok(()) => tokio::fs::File::create(&tmp).await,
            Err(e) => Err(e),
        };
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, path = %tmp.display(), "image upload: cannot create the file");
                self.abandon(&img, None).await;
                return fail(503, "Image storage media is not writable.");
            }
        };
        let mut up = Upload {
            tmp,
            file,
            md5: Md5::new(),
            sha: Sha512::new(),
            size: 0,
            head: Vec::with_capacity(32),
        };
        loop {
            let chunk = match body.next_chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(cut) => {
                    self.abandon(&img, Some(up.tmp)).await;
                    return match cut {
                        Cut::TooSlow => fail(408, "The image data was not received in time."),
                        Cut::Broken => fail(400, "The image data was cut short."),
                    };
                }
            };
            let chunk = chunk.as_ref();
            if up.size + chunk.len() as u64 > cap {
                self.abandon(&img, Some(up.tmp)).await;
                return too_large(cap);
            }
            if let Err(e) = up.write(chunk).await {
                tracing::error!(error = %e, "image upload: write failed");
                self.abandon(&img, Some(up.tmp)).await;
                return fail(413, &format!("Image storage media is full: {e}"));
            }
        }
        if let Err(e) = async {
            up.file.flush().await?;
            up.file.sync_all().await
        }
        .await
        {
            tracing::error!(error = %e, "image upload: sync failed");
            self.abandon(&img, Some(up.tmp)).await;
            return fail(413, &format!("Image storage media is full: {e}"));
        }
        drop(up.file);
        if let Err(e) = tokio::fs::rename(&up.tmp, &path).await {
            tracing::error!(error = %e, "image upload: rename failed");
            self.abandon(&img, Some(up.tmp)).await;
            return fail(503, "Image storage media is not writable.");
        }
        let data = ImageData {
            size: up.size,
            md5: hex::encode(up.md5.finalize()),
            sha512: hex::encode(up.sha.finalize()),
            virtual_size: Some(qcow2_virtual_size(&up.head).unwrap_or(up.size)),
        };
        match engine
            .image_uploaded(&self.p, self.id(), data, staged)
            .await
        {
            Ok(_) => Reply::empty(204),
            Err(e) => {
                // Deleted (or changed by another node) meanwhile: its bytes are nobody's.
                let _ = tokio::fs::remove_file(&path).await;
                match e {
                    nubis_core::DomainError::NotFound { .. } => fail(
                        410,
                        &format!(
                            "Image {} could not be found after upload. The image may have been deleted during the upload.",
                            img.uuid
                        ),
                    ),
                    e => super::domain(e, self.id()),
                }
            }
        }
    }

    /// An upload that did not finish: its partial file goes, the image is queued again.
    async fn abandon(&self, img: &Image, tmp: Option<PathBuf>) {
        if let Some(tmp) = tmp {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        if let Err(e) = self.api.engine.abort_image_upload(&self.p, self.id()).await {
            tracing::warn!(image = %img.id, error = %e, "image upload: could not queue the image again");
        }
    }
}

fn too_large(cap: u64) -> Reply {
    fail(
        413,
        &format!("The incoming image is too large: the image size cap is {cap} bytes."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qcow2_header() {
        let mut h = b"QFI\xfb".to_vec();
        h.resize(24, 0);
        h.extend_from_slice(&(5u64 << 30).to_be_bytes());
        assert_eq!(qcow2_virtual_size(&h), Some(5 << 30));
        assert_eq!(qcow2_virtual_size(b"raw bytes"), None);
        assert_eq!(qcow2_virtual_size(&h[..20]), None);
    }
}
