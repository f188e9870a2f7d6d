//! Password hashing (argon2id): bounded, off the async workers, and only after everything
//! else about a request is known good.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

use super::{ResourceResult, Resources};

impl Resources {
    /// Hashes a password when there is one.
    pub(super) async fn hash_if_given(
        &self,
        password: Option<String>,
    ) -> ResourceResult<Option<String>> {
        match password {
            Some(password) => Ok(Some(self.hash_password(password).await?)),
            None => Ok(None),
        }
    }

    /// argon2id costs tens of milliseconds and about 19 MiB: run it on the blocking pool, at
    /// most `password_hash_concurrency` at once (issue 11: 60 concurrent hashes peaked at
    /// 1.27 GB). The permit is taken before the task is spawned and released when the hash
    /// is done, even if the request was abandoned meanwhile; requests beyond the limit wait.
    async fn hash_password(&self, password: String) -> ResourceResult<String> {
        self.argon2(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
        })
        .await
    }

    /// Whether `password` is the one `stored` was made from (as costly as hashing, and
    /// bounded the same way). A stored value that is not a hash never matches.
    pub(super) async fn password_matches(
        &self,
        password: String,
        stored: String,
    ) -> ResourceResult<bool> {
        self.argon2(move || {
            Ok(PasswordHash::new(&stored).is_ok_and(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            }))
        })
        .await
    }

    /// Runs `work` on the blocking pool under one of the hashing permits.
    async fn argon2<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> ResourceResult<T> {
        let permit = self
            .password_hashes
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| anyhow::anyhow!("password hash permits closed: {e}"))?;
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| anyhow::anyhow!(e))??;
        Ok(outcome)
    }
}
