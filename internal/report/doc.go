// Package report is a report as data and its two writers. A report (a
// verdict, a comparison of observations, a benchmark comparison) is built
// once as a Doc: a lead and sections of paragraphs, lists and tables.
// WriteText writes it for a terminal, aligned in columns and in colour
// when asked; WriteMarkdown writes it as GitHub-flavoured markdown for a
// pull request or a ticket.
//
// Where the two presentations differ in substance, the model says so: a
// Section's Note, a Para's Prefix and a Column's Width are the terminal's,
// a Section's Fold and a Para's Sentence the markdown's, and Only gives a
// section, a block, a table's column, a list item or a span to one
// writer alone (the markdown's sentence under a heading, the terminal's
// benchstat-shaped table, the brief verdicts of a host's busiest
// processes). Everything else both show.
//
// Text is escaped by the writer that writes it: for a terminal, control
// and invisible characters show in Go's notation (textfmt.Printable); in
// markdown, what would act as markup is escaped (textfmt.MarkdownText,
// textfmt.MarkdownCode). Builders pass text as it is. Written as they are:
// Lit spans (the numbers and fixed words a report makes itself, and
// markdown's own "<br>"), and in markdown section titles and column
// headers, which are the report's own words (a TerminalOnly section's
// title may name what came from input: a terminal escapes it).
package report
