//! Billing rules that need no Stripe and no database: which card replaces a
//! removed default, when the last card must stay, how expiry is marked.

use super::{Card, CardExpiry};

/// Subscription statuses in which Stripe still charges the default card, so
/// the organization must keep at least one card.
pub const CHARGING_STATUSES: [&str; 3] = ["active", "trialing", "past_due"];

/// The outcome of removing a card, decided before any Stripe call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The card may go. `new_default` is the card that becomes the default,
    /// when the removed card was the default and another card remains.
    Allowed { new_default: Option<Card> },
    /// The card must stay. The message explains why and what to do instead.
    Refused(String),
}

/// Decides what removing `card_id` from `cards` does.
///
/// `cards` are the organization's attached cards, newest first;
/// `subscription_status` is
/// Stripe's status of its subscription, if any. The last card cannot go
/// while the subscription is active, trialing or past due. Removing the
/// default promotes the most recently added other card.
pub fn plan_removal(cards: &[Card], card_id: &str, subscription_status: Option<&str>) -> Removal {
    let Some(card) = cards.iter().find(|c| c.id == card_id) else {
        return Removal::Refused("This card is not one of your organization's cards.".to_string());
    };
    let others: Vec<&Card> = cards.iter().filter(|c| c.id != card_id).collect();

    if others.is_empty() {
        if let Some(status) = subscription_status.filter(|s| CHARGING_STATUSES.contains(s)) {
            return Removal::Refused(format!(
                "The {} card ending in {} is the only card, and the subscription is {}, so \
                 Stripe needs it to charge the next invoice. To remove every card, use Cancel \
                 Subscription at the bottom of this page.",
                card.brand_label(),
                card.last4,
                status_label(status),
            ));
        }
    }

    // Stripe dates cards in whole seconds; among cards of the same second the
    // one listed first (the newest) wins.
    let new_default = if card.is_default {
        others
            .into_iter()
            .fold(None::<&Card>, |best, c| match best {
                Some(b) if b.added_at >= c.added_at => Some(b),
                _ => Some(c),
            })
            .cloned()
    } else {
        None
    };
    Removal::Allowed { new_default }
}

/// Returns Stripe's subscription status in words.
pub fn status_label(status: &str) -> String {
    match status {
        "past_due" => "past due".to_string(),
        "incomplete_expired" => "incomplete (expired)".to_string(),
        other => other.replace('_', " "),
    }
}

/// Days before the end of its expiry month when a card counts as expiring.
pub const EXPIRING_WITHIN_DAYS: i64 = 31;

/// Marks a card expired once its expiry month has passed, and expiring when
/// the month ends within `EXPIRING_WITHIN_DAYS` of `today`. A card stays
/// valid through the last day of its expiry month.
pub fn card_expiry(exp_month: i64, exp_year: i64, today: chrono::NaiveDate) -> CardExpiry {
    let (next_year, next_month) = if exp_month >= 12 { (exp_year + 1, 1) } else { (exp_year, exp_month + 1) };
    let Some(first_invalid_day) = i32::try_from(next_year)
        .ok()
        .and_then(|year| chrono::NaiveDate::from_ymd_opt(year, next_month as u32, 1))
    else {
        return CardExpiry::Valid;
    };

    if today >= first_invalid_day {
        CardExpiry::Expired
    } else if (first_invalid_day - today).num_days() <= EXPIRING_WITHIN_DAYS {
        CardExpiry::ExpiringSoon
    } else {
        CardExpiry::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(id: &str, added_at: i64, is_default: bool) -> Card {
        Card {
            id: id.to_string(),
            brand: "visa".to_string(),
            last4: id[id.len() - 4..].to_string(),
            exp_month: 12,
            exp_year: 2030,
            added_at,
            is_default,
            expiry: CardExpiry::Valid,
        }
    }

    fn day(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn last_card_refused_while_past_due() {
        let cards = [card("pm_4242", 1, true)];
        let Removal::Refused(message) = plan_removal(&cards, "pm_4242", Some("past_due")) else {
            panic!("the last card of a past_due subscription must stay");
        };
        assert!(message.contains("past due"), "{message}");
        assert!(message.contains("Cancel Subscription"), "{message}");
        assert!(message.contains("ending in 4242"), "{message}");
    }

    #[test]
    fn last_card_refused_in_every_charging_status() {
        let cards = [card("pm_4242", 1, true)];
        for status in CHARGING_STATUSES {
            assert!(
                matches!(plan_removal(&cards, "pm_4242", Some(status)), Removal::Refused(_)),
                "status {status}"
            );
        }
    }

    #[test]
    fn last_card_allowed_without_charging_subscription() {
        let cards = [card("pm_4242", 1, true)];
        for status in [None, Some("canceled"), Some("incomplete"), Some("incomplete_expired"), Some("unpaid")] {
            assert_eq!(
                plan_removal(&cards, "pm_4242", status),
                Removal::Allowed { new_default: None },
                "status {status:?}"
            );
        }
    }

    #[test]
    fn non_default_removal_keeps_default() {
        let cards = [card("pm_1111", 1, true), card("pm_2222", 2, false)];
        assert_eq!(plan_removal(&cards, "pm_2222", Some("active")), Removal::Allowed { new_default: None });
    }

    #[test]
    fn default_removal_promotes_newest_other() {
        let cards = [card("pm_1111", 10, false), card("pm_2222", 30, true), card("pm_3333", 20, false)];
        let Removal::Allowed { new_default: Some(promoted) } = plan_removal(&cards, "pm_2222", Some("active")) else {
            panic!("removing the default with others left must promote one");
        };
        assert_eq!(promoted.id, "pm_3333");
    }

    #[test]
    fn same_second_promotes_listed_first() {
        let cards = [card("pm_3333", 20, false), card("pm_1111", 20, false), card("pm_2222", 10, true)];
        let Removal::Allowed { new_default: Some(promoted) } = plan_removal(&cards, "pm_2222", None) else {
            panic!("removing the default with others left must promote one");
        };
        assert_eq!(promoted.id, "pm_3333");
    }

    #[test]
    fn unknown_card_refused() {
        let cards = [card("pm_1111", 1, true)];
        assert!(matches!(plan_removal(&cards, "pm_9999", None), Removal::Refused(_)));
    }

    #[test]
    fn expiry_marks_month_boundaries() {
        assert_eq!(card_expiry(11, 2026, day(2026, 11, 30)), CardExpiry::ExpiringSoon);
        assert_eq!(card_expiry(11, 2026, day(2026, 12, 1)), CardExpiry::Expired);
        assert_eq!(card_expiry(12, 2026, day(2026, 12, 4)), CardExpiry::ExpiringSoon);
        assert_eq!(card_expiry(12, 2026, day(2027, 1, 1)), CardExpiry::Expired);
        assert_eq!(card_expiry(1, 2027, day(2026, 12, 4)), CardExpiry::Valid);
        assert_eq!(card_expiry(12, 2030, day(2026, 12, 4)), CardExpiry::Valid);
    }
}
