//! Counted operations: how many times an instance may still have its configuration lowered or
//! its bandwidth billing switched (Tencent `DescribeInstancesOperationLimit`).

use crate::model::Instance;

/// An operation the cloud caps per instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountedOperation {
    /// Lowering the instance's configuration (a smaller instance type).
    Degrade,
    /// Switching how the instance's public bandwidth is billed.
    InternetChargeTypeChange,
}

/// How often an operation was used on an instance and how often it may be; `None` where the
/// operation is not counted for the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub used: Option<u32>,
    pub limit: Option<u32>,
}

/// How many times a subscription (`PREPAID`) instance may be degraded in its lifetime (the
/// allowance the cloud's reference answer shows).
pub const PREPAID_DEGRADES: u32 = 5;

impl Allowance {
    const UNCOUNTED: Self = Self {
        used: None,
        limit: None,
    };
}

/// The allowance of `op` on `instance`. Only a subscription instance's degrades are counted:
/// pay-as-you-go instances change configuration freely, and no cap on bandwidth billing
/// switches is documented. Nothing in nubis lowers a configuration yet, so no allowance has
/// been spent.
pub fn allowance(instance: &Instance, op: CountedOperation) -> Allowance {
    by_charge_type(&instance.charge_type, op)
}

fn by_charge_type(charge_type: &str, op: CountedOperation) -> Allowance {
    match op {
        CountedOperation::Degrade if charge_type == "PREPAID" => Allowance {
            used: Some(0),
            limit: Some(PREPAID_DEGRADES),
        },
        CountedOperation::Degrade | CountedOperation::InternetChargeTypeChange => {
            Allowance::UNCOUNTED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_subscription_degrades_are_counted() {
        use CountedOperation::*;
        let counted = Allowance {
            used: Some(0),
            limit: Some(PREPAID_DEGRADES),
        };
        assert_eq!(by_charge_type("PREPAID", Degrade), counted);
        for charge in ["POSTPAID_BY_HOUR", "SPOTPAID", "CDHPAID", "CDCPAID"] {
            assert_eq!(by_charge_type(charge, Degrade), Allowance::UNCOUNTED);
        }
        for charge in ["PREPAID", "POSTPAID_BY_HOUR"] {
            assert_eq!(
                by_charge_type(charge, InternetChargeTypeChange),
                Allowance::UNCOUNTED
            );
        }
    }
}
