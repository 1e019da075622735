//! Elastic tabstops, as Go's `text/tabwriter` lays them out.
//!
//! kubectl prints every table and every `describe` through a tabwriter, so reproducing its
//! algorithm (column blocks, lines without tabs ending a block, the last cell of a line never
//! padded) is what makes our output line up exactly like kubectl's, rather than approximately.
//! Only what kubectl uses is here: left alignment, space padding, and Kubernetes' own
//! "remember widths" extension used by `get --watch`.

/// Buffers text and aligns its tab-separated cells on [`TabWriter::flush`].
#[derive(Debug, Clone)]
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    remember_widths: bool,
    /// Completed lines waiting for a flush; each is its cells, the last one unterminated.
    lines: Vec<Vec<String>>,
    /// Cells of the line being written.
    current: Vec<String>,
    cell: String,
    /// Widths kept across flushes (`RememberWidths`), indexed by column.
    remembered: Vec<usize>,
    out: String,
}

impl TabWriter {
    /// `minwidth` includes the padding, as in Go.
    pub fn new(minwidth: usize, padding: usize) -> Self {
        Self {
            minwidth,
            padding,
            remember_widths: false,
            lines: Vec::new(),
            current: Vec::new(),
            cell: String::new(),
            remembered: Vec::new(),
            out: String::new(),
        }
    }

    /// The writer `kubectl get` uses.
    pub fn for_tables() -> Self {
        let mut w = Self::new(6, 3);
        w.remember_widths = true;
        w
    }

    /// The writer `kubectl describe` uses.
    pub fn for_describe() -> Self {
        Self::new(0, 2)
    }

    /// Forgets remembered column widths, as kubectl does before each new table.
    pub fn reset_widths(&mut self) {
        self.remembered.clear();
    }

    /// Adds text: `\t` ends a cell, `\n` a line. A line with no tab ends the current column block,
    /// so everything before it is formatted at once, exactly like Go's tabwriter.
    pub fn write(&mut self, text: &str) {
        for ch in text.chars() {
            match ch {
                '\t' => self.current.push(std::mem::take(&mut self.cell)),
                '\n' => {
                    self.current.push(std::mem::take(&mut self.cell));
                    let line = std::mem::take(&mut self.current);
                    let single = line.len() == 1;
                    self.lines.push(line);
                    if single {
                        self.format_buffered();
                    }
                }
                c => self.cell.push(c),
            }
        }
    }

    /// Formats everything written so far and returns it; a trailing unterminated line is
    /// written as it is, without a newline.
    pub fn flush(&mut self) -> String {
        self.format_buffered();
        if !self.current.is_empty() || !self.cell.is_empty() {
            for c in self.current.drain(..) {
                self.out.push_str(&c);
            }
            self.out.push_str(&std::mem::take(&mut self.cell));
        }
        std::mem::take(&mut self.out)
    }

    fn format_buffered(&mut self) {
        let lines = std::mem::take(&mut self.lines);
        let mut widths = Vec::new();
        self.format(&lines, &mut widths, 0, lines.len());
    }

    /// Go's `(*Writer).format`: finds blocks of consecutive lines that have a cell in the next
    /// column, sizes that column over the block, and recurses for the columns to its right.
    fn format(
        &mut self,
        lines: &[Vec<String>],
        widths: &mut Vec<usize>,
        line0: usize,
        line1: usize,
    ) {
        let column = widths.len();
        let mut start = line0;
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(lines, widths, start, this);
            start = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(text_width(&lines[this][column]) + self.padding);
                this += 1;
            }
            if self.remember_widths {
                match self.remembered.get_mut(column) {
                    Some(w) if *w > width => width = *w,
                    Some(w) => *w = width,
                    None => self.remembered.push(width),
                }
            }
            widths.push(width);
            self.format(lines, widths, start, this);
            widths.pop();
            start = this;
        }
        self.write_lines(lines, widths, start, line1);
    }

    fn write_lines(&mut self, lines: &[Vec<String>], widths: &[usize], line0: usize, line1: usize) {
        for line in &lines[line0..line1] {
            for (j, cell) in line.iter().enumerate() {
                self.out.push_str(cell);
                if let Some(&w) = widths.get(j) {
                    // The last cell of a line is never padded: it is not tab-terminated.
                    if j + 1 < line.len() {
                        let pad = w.saturating_sub(text_width(cell));
                        self.out.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            self.out.push('\n');
        }
    }
}

fn text_width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_padded_by_three_with_min_width() {
        let mut w = TabWriter::for_tables();
        w.write("NAME\tSTATUS\tAGE\n");
        w.write("default\tActive\t5m\n");
        w.write("kube-system\tActive\t5m\n");
        assert_eq!(
            w.flush(),
            "NAME          STATUS   AGE\ndefault       Active   5m\nkube-system   Active   5m\n"
        );
    }

    #[test]
    fn short_columns_get_min_width() {
        let mut w = TabWriter::for_tables();
        w.write("A\tB\n1\t2\n");
        assert_eq!(w.flush(), "A     B\n1     2\n");
    }

    #[test]
    fn line_without_tab_ends_block() {
        let mut w = TabWriter::for_describe();
        w.write("Name:\tx\n");
        w.write("Namespace:\tdefault\n");
        w.write("Containers:\n");
        w.write("  c:\n");
        w.write("    Image:\tbusybox\n");
        w.write("    Restart Count:\t0\n");
        assert_eq!(
            w.flush(),
            "Name:       x\nNamespace:  default\nContainers:\n  c:\n    Image:          busybox\n    Restart Count:  0\n"
        );
    }

    #[test]
    fn continuation_lines_align_with_their_block() {
        let mut w = TabWriter::for_describe();
        w.write("Labels:\tapp=a\n\tb=c\nAnnotations:\t<none>\n");
        assert_eq!(
            w.flush(),
            "Labels:       app=a\n              b=c\nAnnotations:  <none>\n"
        );
    }

    #[test]
    fn remembered_widths_keep_watch_rows_aligned() {
        let mut w = TabWriter::for_tables();
        w.write("NAME\tREADY\nlong-name-here\t1/1\n");
        let first = w.flush();
        w.write("x\t0/1\n");
        let second = w.flush();
        assert_eq!(first, "NAME             READY\nlong-name-here   1/1\n");
        assert_eq!(second, "x                0/1\n");
        w.reset_widths();
        w.write("x\t0/1\n");
        assert_eq!(w.flush(), "x     0/1\n");
    }

    #[test]
    fn unterminated_text_is_flushed_as_is() {
        let mut w = TabWriter::for_tables();
        w.write("a\tb");
        assert_eq!(w.flush(), "ab");
    }
}
