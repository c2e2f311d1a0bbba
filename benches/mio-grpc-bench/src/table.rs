//! A plain text table with right-aligned numeric columns, for the main
//! job's and the comparison's summaries.

/// A table: a header row and data rows of cells.
///
/// ```
/// use mio_grpc_bench::table::Table;
/// let mut t = Table::new(&["scenario", "p50 µs"]);
/// t.row(vec!["U1 0 B".into(), "9.8".into()]);
/// assert!(t.render().contains("| U1 0 B   |    9.8 |"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new<S: AsRef<str>>(header: &[S]) -> Table {
        Table {
            header: header.iter().map(|s| s.as_ref().to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as Markdown-compatible text: `| a | b |` lines, the first
    /// column left-aligned and the others right-aligned.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::from("|");
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let pad = width - cell.chars().count();
                if i == 0 {
                    out.push_str(&format!(" {cell}{} |", " ".repeat(pad)));
                } else {
                    out.push_str(&format!(" {}{cell} |", " ".repeat(pad)));
                }
            }
            out.push('\n');
            out
        };
        let mut out = line(&self.header);
        out.push('|');
        for (i, width) in widths.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!(":{}|", "-".repeat(width + 1)));
            } else {
                out.push_str(&format!("{}:|", "-".repeat(width + 1)));
            }
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn columns_align_and_short_rows_pad() {
        let mut t = Table::new(&["scenario", "p50"]);
        t.row(vec!["U1 0B".into(), "12.5".into()]);
        t.row(vec!["U64 1KiB".into()]);
        assert_eq!(
            t.render(),
            "| scenario |  p50 |\n|:---------|-----:|\n| U1 0B    | 12.5 |\n| U64 1KiB |      |\n"
        );
    }
}
