use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

use super::SecretStore;
use crate::error::AwsError;
use crate::secret::SecretString;

/// [`SecretStore`] backed by AWS Secrets Manager.
#[derive(Clone, Debug)]
pub struct SecretsManagerStore {
    client: Client,
}

impl SecretsManagerStore {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: Client::new(config) }
    }

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
