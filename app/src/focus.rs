//! Keyboard focus helpers for the browser. A page that re-renders after a
//! change replaces the focused element, and the browser then moves focus
//! to `<body>`, which sends keyboard and screen reader users back to the
//! top of the page. These helpers put focus back where it was.
//!
//! Every function reads the browser's `document`, so call them only from
//! event handlers and effects, which never run on the server.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Returns the `id` of the focused element, or `None` when focus is on
/// `<body>` or on an element without an id.
pub fn active_element_id() -> Option<String> {
    document()
        .active_element()
        .map(|element| element.id())
        .filter(|id| !id.is_empty())
}

/// Returns whether focus has fallen back to `<body>`, as it does when the
/// focused element is removed from the page.
pub fn focus_is_lost() -> bool {
    match document().active_element() {
        None => true,
        Some(element) => element.tag_name().eq_ignore_ascii_case("body"),
    }
}

/// Returns whether the page has an element with `id`.
pub fn element_exists(id: &str) -> bool {
    document().get_element_by_id(id).is_some()
}

/// Moves focus to the element with `id`. Returns whether it now has focus,
/// which is false when it is missing, disabled or not focusable.
pub fn focus_by_id(id: &str) -> bool {
    let Some(element) = document().get_element_by_id(id) else {
        return false;
    };
    let Ok(element) = element.dyn_into::<web_sys::HtmlElement>() else {
        return false;
    };
    // focus() on a disabled button fails silently, so check the result.
    let _ = element.focus();
    active_element_id().as_deref() == Some(id)
}

/// Records the id of every element that takes focus, so that after a
/// re-render `restore_lost_focus` can find its replacement. The listener
/// is removed when the calling component is dropped.
pub fn track_focus() -> StoredValue<Option<String>> {
    let last_focused = StoredValue::new(None::<String>);
    let listener = window_event_listener(leptos::ev::focusin, move |event| {
        let id = event
            .target()
            .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
            .map(|element| element.id())
            .filter(|id| !id.is_empty());
        last_focused.set_value(id);
    });
    on_cleanup(move || listener.remove());
    last_focused
}

/// After the next frame, when the re-rendered page is in the document,
/// moves focus back to the element with the recorded id if focus was
/// lost. When that element is gone, `fallback` picks another id from the
/// recorded one.
pub fn restore_lost_focus(last_focused: StoredValue<Option<String>>, fallback: fn(&str) -> Option<&'static str>) {
    request_animation_frame(move || {
        if !focus_is_lost() {
            return;
        }
        let Some(id) = last_focused.get_value() else {
            return;
        };
        if !focus_by_id(&id) {
            if let Some(other) = fallback(&id) {
                focus_by_id(other);
            }
        }
    });
}
