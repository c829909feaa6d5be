"""What is printed: the one workbook writer (sheets) and the reports and workbooks laid out with it."""
