package httpapi

// CSVCell exposes csvCell to the external tests.
var CSVCell = csvCell
