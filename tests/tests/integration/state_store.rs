//! The state-store contract (`idc_guard::store::contract`) against DynamoDB on the local AWS
//! stand-in, through the real SDK adapter: the same suite the CLI's SQLite store passes.

use idc_guard::adapters::DynamoStateStore;
use idc_guard::store::contract::check_state_store;
use local_aws::*;

#[tokio::test]
async fn dynamodb_meets_the_state_store_contract() {
    let (sdk, _account) = isolated_account().await;
    let table = create_state_table(&sdk).await;
    check_state_store(&DynamoStateStore::new(&sdk, table), "contract").await;
}
