//! Client-side encryption of off-site copies with age (DESIGN §9): the only importer of the
//! `age` crate. The format is the age CLI's, so `age -d -i KEY FILE` decrypts a copy by
//! hand. Sealing is incremental (bytes in, ciphertext out, in constant memory); opening
//! detects an age file by its header, so plain and sealed copies read the same way.

use crate::error::{CtlError, Result};
use age::secrecy::ExposeSecret;
use bytes::Bytes;
use futures_util::io::AsyncRead;
use futures_util::{StreamExt, TryStreamExt};
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";

/// The public keys copies are sealed to; empty means copies go out plain.
#[derive(Clone, Default)]
pub struct Recipients(Vec<age::x25519::Recipient>);

impl Recipients {
    pub fn parse(keys: &[String]) -> Result<Self> {
        keys.iter()
            .map(|k| {
                k.parse::<age::x25519::Recipient>().map_err(|e| {
                    CtlError::usage(format!(
                        "BACKUP_ENCRYPTION_RECIPIENTS: {k:?} is not an age public key"
                    ))
                    .cause(e)
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A new sealed (or plain) stream for one file.
    pub fn seal(&self) -> Result<Sealing> {
        if self.0.is_empty() {
            return Ok(Sealing {
                writer: None,
                out: Sink::default(),
            });
        }
        let encryptor = age::Encryptor::with_recipients(self.0.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| CtlError::failure("cannot start the encryption").cause(e))?;
        let out = Sink::default();
        let writer = encryptor
            .wrap_output(out.clone())
            .map_err(|e| CtlError::failure("cannot start the encryption").cause(e))?;
        Ok(Sealing {
            writer: Some(writer),
            out,
        })
    }
}

/// Where the age writer puts ciphertext until the caller takes it.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    fn take(&self) -> Bytes {
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Bytes::from(std::mem::take(&mut *buf))
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One file being sealed: feed plaintext, take what is ready to send.
pub struct Sealing {
    writer: Option<age::stream::StreamWriter<Sink>>,
    out: Sink,
}

impl Sealing {
    /// The bytes to send for `data` (age emits whole 64 KiB chunks, so often nothing yet).
    pub fn push(&mut self, data: &[u8]) -> Result<Bytes> {
        match &mut self.writer {
            None => Ok(Bytes::copy_from_slice(data)),
            Some(w) => {
                w.write_all(data)
                    .map_err(|e| CtlError::failure("encryption failed").cause(e))?;
                Ok(self.out.take())
            }
        }
    }

    /// The last bytes: age's final chunk, which makes truncation detectable.
    pub fn finish(self) -> Result<Bytes> {
        match self.writer {
            None => Ok(Bytes::new()),
            Some(w) => {
                w.finish()
                    .map_err(|e| CtlError::failure("encryption failed").cause(e))?;
                Ok(self.out.take())
            }
        }
    }
}

pub type Reader = Pin<Box<dyn AsyncRead + Send>>;

/// The plaintext of a copy as it downloads: decrypted when it is an age file, which needs
/// the identity file; passed through otherwise.
pub async fn open(
    mut stream: futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>,
    identity: Option<&Path>,
    what: &str,
) -> Result<Reader> {
    let first = stream
        .next()
        .await
        .transpose()
        .map_err(|e| CtlError::failure(format!("cannot download {what}")).cause(e))?
        .unwrap_or_default();
    let sealed = first.starts_with(AGE_MAGIC);
    let whole = futures_util::stream::iter([Ok(first)]).chain(stream);
    let reader = whole.into_async_read();
    if !sealed {
        return Ok(Box::pin(reader));
    }
    let identities = load_identities(identity, what)?;
    let decryptor = age::Decryptor::new_async(reader)
        .await
        .map_err(|e| CtlError::failure(format!("{what} is not a readable age file")).cause(e))?;
    let plain = decryptor
        .decrypt_async(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| {
            CtlError::failure(format!("cannot decrypt {what}"))
                .cause(e)
                .hint("BACKUP_ENCRYPTION_IDENTITY_FILE must hold the key whose public half is in BACKUP_ENCRYPTION_RECIPIENTS")
        })?;
    Ok(Box::pin(plain))
}

fn load_identities(path: Option<&Path>, what: &str) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>> {
    let Some(path) = path else {
        return Err(CtlError::usage(format!(
            "{what} is encrypted, and BACKUP_ENCRYPTION_IDENTITY_FILE is not set"
        ))
        .hint("set it to the age identity file whose public key is in BACKUP_ENCRYPTION_RECIPIENTS"));
    };
    let file = age::IdentityFile::from_file(path.display().to_string()).map_err(|e| {
        CtlError::usage(format!(
            "cannot read the identity file {} to decrypt {what}",
            path.display()
        ))
        .cause(e)
        .hint("restore it from the copy kept off this server, or correct BACKUP_ENCRYPTION_IDENTITY_FILE")
    })?;
    file.into_identities()
        .map_err(|e| CtlError::usage(format!("the identity file {} is not usable", path.display())).cause(e))
}

/// Creates a new identity at `path` (mode 0600, never over an existing file); returns its
/// public key.
pub fn create_identity(path: &Path) -> Result<String> {
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let text = format!(
        "# created: {}\n# public key: {public}\n{}\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        identity.to_string().expose_secret()
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CtlError::failure(format!("cannot create {}", dir.display())).cause(e))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(path)
        .map_err(|e| CtlError::failure(format!("cannot create {}", path.display())).cause(e))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| CtlError::failure(format!("cannot write {}", path.display())).cause(e))?;
    Ok(public)
}

/// The public key of the identity in `path`.
pub fn public_key_of(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CtlError::usage(format!("cannot read {}", path.display())).cause(e))?;
    let key = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .ok_or_else(|| CtlError::usage(format!("{} holds no age identity", path.display())))?;
    let identity: age::x25519::Identity = key
        .parse()
        .map_err(|_| CtlError::usage(format!("{} holds a malformed age identity", path.display())))?;
    Ok(identity.to_public().to_string())
}

trait OpenOptionsExt {
    fn mode_0600(&mut self) -> &mut Self;
}

impl OpenOptionsExt for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::AsyncReadExt;

    async fn roundtrip(recipients: &Recipients, identity: Option<&Path>, data: &[u8]) -> Result<Vec<u8>> {
        let mut sealing = recipients.seal()?;
        let mut sealed = Vec::new();
        for chunk in data.chunks(10_000) {
            sealed.extend_from_slice(&sealing.push(chunk)?);
        }
        sealed.extend_from_slice(&sealing.finish()?);
        let chunks: Vec<std::io::Result<Bytes>> = sealed
            .chunks(7_000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut reader = open(futures_util::stream::iter(chunks).boxed(), identity, "test").await?;
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .await
            .map_err(|e| CtlError::failure("read").cause(e))?;
        Ok(out)
    }

    #[tokio::test]
    async fn seals_and_opens_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.age");
        let public = create_identity(&key).unwrap();
        assert_eq!(public_key_of(&key).unwrap(), public);
        assert_eq!(crate::sys::fsutil::mode_of(&key), Some(0o600));
        assert!(create_identity(&key).is_err(), "never overwrites a key");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let recipients = Recipients::parse(&[public]).unwrap();
        assert_eq!(roundtrip(&recipients, Some(&key), &data).await.unwrap(), data);
        assert!(roundtrip(&recipients, None, &data).await.is_err());
        assert_eq!(
            roundtrip(&Recipients::default(), None, &data).await.unwrap(),
            data
        );
        let other = dir.path().join("other.age");
        create_identity(&other).unwrap();
        assert!(roundtrip(&recipients, Some(&other), &data).await.is_err());
    }
}
