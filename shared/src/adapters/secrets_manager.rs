use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

use crate::error::AwsError;
use crate::secret::SecretString;
use crate::secret::{SecretAdmin, SecretDescription, SecretStore, SecretVersions};

/// [`SecretStore`] backed by AWS Secrets Manager.
#[derive(Clone, Debug)]
pub struct SecretsManagerStore {
    client: Client,
}

impl SecretsManagerStore {
    /// A client from the SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: super::sdk_client!(aws_sdk_secretsmanager, config) }
    }

    /// This client.
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }
}

impl SecretStore for SecretsManagerStore {
    async fn secret_string(
        &self,
        secret_id: &str,
        stage: &str,
    ) -> Result<Option<SecretString>, AwsError> {
        let result =
            self.client.get_secret_value().secret_id(secret_id).version_stage(stage).send().await;
        match result {
            Ok(out) => match out.secret_string {
                Some(s) => Ok(Some(SecretString::from(s))),
                None => Err(AwsError::Permanent {
                    service: "secretsmanager",
                    operation: "GetSecretValue",
                    message: format!("the {stage} version holds binary data, not a string"),
                }),
            },
            // No version carries this label (e.g. no rotation in progress → no AWSPENDING).
            // A missing secret also answers ResourceNotFound: the caller tells the two apart
            // by asking for AWSCURRENT, which always exists on a real secret.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetSecretValueError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::from_sdk("secretsmanager", "GetSecretValue", e)),
        }
    }
}

crate::error::sdk_error_fn!(sm, "secretsmanager");

impl SecretVersions for SecretsManagerStore {
    async fn describe(&self, secret_id: &str) -> Result<SecretDescription, AwsError> {
        let out = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| sm("DescribeSecret", e))?;
        Ok(SecretDescription {
            arn: out.arn.unwrap_or_default(),
            rotation_enabled: out.rotation_enabled.unwrap_or(false),
            versions: out.version_ids_to_stages.unwrap_or_default().into_iter().collect(),
            tags: out
                .tags
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
                .collect(),
        })
    }

    async fn version_value(
        &self,
        secret_id: &str,
        version_id: &str,
    ) -> Result<Option<SecretString>, AwsError> {
        let result =
            self.client.get_secret_value().secret_id(secret_id).version_id(version_id).send().await;
        match result {
            Ok(out) => Ok(out.secret_string.map(SecretString::from)),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetSecretValueError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(sm("GetSecretValue", e)),
        }
    }
}

impl SecretAdmin for SecretsManagerStore {
    async fn put_pending(
        &self,
        secret_id: &str,
        version_id: &str,
        value: &SecretString,
    ) -> Result<(), AwsError> {
        use crate::secret::ExposeSecret;
        self.client
            .put_secret_value()
            .secret_id(secret_id)
            .client_request_token(version_id)
            .secret_string(value.expose_secret())
            .version_stages(crate::secret::AWSPENDING)
            .send()
            .await
            .map_err(|e| sm("PutSecretValue", e))?;
        Ok(())
    }

    async fn promote(
        &self,
        secret_id: &str,
        to_version: &str,
        from_version: Option<&str>,
    ) -> Result<(), AwsError> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(crate::secret::AWSCURRENT)
            .move_to_version_id(to_version)
            .set_remove_from_version_id(from_version.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sm("UpdateSecretVersionStage", e))?;
        // AWSPENDING stays on the new version after the move; remove it so the next rotation
        // starts clean (Secrets Manager's own rotation templates leave this to the service).
        self.client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(crate::secret::AWSPENDING)
            .remove_from_version_id(to_version)
            .send()
            .await
            .map_err(|e| sm("UpdateSecretVersionStage", e))?;
        Ok(())
    }

    async fn random_password(&self, length: i64) -> Result<SecretString, AwsError> {
        let out = self
            .client
            .get_random_password()
            .password_length(length)
            .exclude_punctuation(true)
            .include_space(false)
            .send()
            .await
            .map_err(|e| sm("GetRandomPassword", e))?;
        out.random_password.map(SecretString::from).ok_or(AwsError::Permanent {
            service: "secretsmanager",
            operation: "GetRandomPassword",
            message: "no password in the reply".into(),
        })
    }

    async fn start_rotation(&self, secret_id: &str, version_id: &str) -> Result<(), AwsError> {
        self.client
            .rotate_secret()
            .secret_id(secret_id)
            .client_request_token(version_id)
            .send()
            .await
            .map_err(|e| sm("RotateSecret", e))?;
        Ok(())
    }
}
