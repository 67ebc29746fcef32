//! Moving a list's cursor and keeping its scroll offset, the way a pager does: the rows
//! on screen (`page`, measured by the last draw) stay put while the cursor moves inside
//! them; PageDown first lands on the last visible row, then shows the next page with the
//! cursor on its last row; PageUp mirrors it.

/// Which way the cursor moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
}

/// The offset that shows `cursor` with as little scrolling as possible, within a list
/// of `len` rows of which `page` fit.
pub fn keep_visible(cursor: usize, offset: usize, page: usize, len: usize) -> usize {
    let page = page.max(1);
    let offset = if cursor < offset {
        cursor
    } else if cursor >= offset + page {
        cursor + 1 - page
    } else {
        offset
    };
    offset.min(len.saturating_sub(page))
}

/// The cursor and offset after a move.
pub fn step(m: Move, cursor: usize, offset: usize, page: usize, len: usize) -> (usize, usize) {
    if len == 0 {
        return (0, 0);
    }
    let page = page.max(1);
    let last = len - 1;
    let cursor = cursor.min(last);
    let to = match m {
        Move::Up => cursor.saturating_sub(1),
        Move::Down => (cursor + 1).min(last),
        Move::Top => 0,
        Move::Bottom => last,
        Move::PageDown => {
            let last_visible = (offset + page - 1).min(last);
            if cursor < last_visible {
                last_visible
            } else {
                let to = (cursor + page).min(last);
                return (to, keep_visible(to, (to + 1).saturating_sub(page), page, len));
            }
        }
        Move::PageUp => {
            let first_visible = offset.min(last);
            if cursor > first_visible {
                first_visible
            } else {
                let to = cursor.saturating_sub(page);
                return (to, keep_visible(to, to, page, len));
            }
        }
    };
    (to, keep_visible(to, offset, page, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_down_lands_on_the_last_visible_row_then_pages() {
        // 100 rows, 10 visible, cursor at the top.
        assert_eq!(step(Move::PageDown, 0, 0, 10, 100), (9, 0));
        assert_eq!(step(Move::PageDown, 9, 0, 10, 100), (19, 10));
        assert_eq!(step(Move::PageDown, 95, 90, 10, 100), (99, 90));
        assert_eq!(step(Move::PageDown, 99, 90, 10, 100), (99, 90), "at the end it stays");
    }

    #[test]
    fn page_up_lands_on_the_first_visible_row_then_pages() {
        assert_eq!(step(Move::PageUp, 19, 10, 10, 100), (10, 10));
        assert_eq!(step(Move::PageUp, 10, 10, 10, 100), (0, 0));
        assert_eq!(step(Move::PageUp, 0, 0, 10, 100), (0, 0));
    }

    #[test]
    fn lines_move_inside_the_page_and_scroll_at_its_edges() {
        assert_eq!(step(Move::Down, 3, 0, 10, 100), (4, 0));
        assert_eq!(step(Move::Down, 9, 0, 10, 100), (10, 1));
        assert_eq!(step(Move::Up, 10, 10, 10, 100), (9, 9));
        assert_eq!(step(Move::Bottom, 0, 0, 10, 100), (99, 90));
        assert_eq!(step(Move::Top, 50, 45, 10, 100), (0, 0));
    }

    #[test]
    fn short_lists_and_empty_lists() {
        assert_eq!(step(Move::PageDown, 0, 0, 10, 3), (2, 0));
        assert_eq!(step(Move::PageDown, 0, 0, 10, 0), (0, 0));
        assert_eq!(keep_visible(2, 7, 10, 3), 0, "an offset past a shrunken list comes back");
    }
}
