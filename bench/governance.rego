# The engine's decision (ingress/engine) written in Rego, for the side-by-side figure R2 in docs/benchmarks.md.
#
# Input: a /v1/check request body. Data: {"policies": [rules, ...]}, each with every field filled in (the harness
# passes PolicyRules.model_dump()). The same three steps as the engine: a personal-data scan (values by pattern,
# confirmed by Luhn, the SSN ranges, IPv4 octets and phone digit counts; keys by name), the risk factors and score
# of each policy, and its hard rules. RE2 has no lookbehind, so the patterns carry their boundaries in a group;
# the IBAN is checked by length, not by its mod-97 sum.
package governance

# --- personal data in values ------------------------------------------------------------------------------------

value_patterns := {
	"email": `([A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})`,
	"payment_card": `(?:^|[^\w])([2-6]\d{3}(?:[ \-]?\d){9,15})(?:$|[^\w])`,
	"ssn": `(?:^|[^\w\-])(\d{3}-\d{2}-\d{4})(?:$|[^\w\-])`,
	"ip_address": `(?:^|[^\w.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:$|[^\w.])`,
	"iban": `(?:^|[^\w])([A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30})`,
	"phone": `(?:^|[^\w+\-.])(\+[1-9]\d{6,14}|\+\d{1,3}[ .\-]?(?:\(\d{1,5}\)[ .\-]?)?\d{1,5}(?:[ .\-]\d{1,8}){1,6}|\(\d{1,5}\)[ .\-]?\d{1,8}(?:[ .\-]\d{1,5}){0,5}|\d{1,4}(?:[ .\-]\d{1,8}){1,6})(?:$|[^\w])`,
	"date_of_birth": `((?i:born(?:\s+on)?|birth\s*(?:date|day)|date\s+of\s+birth|d\.?o\.?b\.?)\s*[:\-]?\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4})`,
}

# One alternation first, as the engine does: most strings hold no candidate at all.
any_candidate := `[0-9]|@|\+|(?i:born|birth|dob|d\.o\.b)`

scanned contains [path, text] if {
	walk(input.context, [path, text])
	is_string(text)
	count(text) >= 6
	regex.match(any_candidate, text)
}

scanned contains [["operations", i, field], text] if {
	some i, op in input.operations
	some field in ["prompt", "input", "query", "purpose", "filename"]
	text := op[field]
	is_string(text)
	count(text) >= 6
	regex.match(any_candidate, text)
}

value_findings contains [category, path] if {
	some [path, text] in scanned
	some category, pattern in value_patterns
	some match in regex.find_all_string_submatch_n(pattern, text, -1)
	confirmed(category, match[1])
}

confirmed("email", _)

confirmed("date_of_birth", _)

confirmed("iban", candidate) if count(replace(candidate, " ", "")) >= 15

confirmed("payment_card", candidate) if {
	digits := regex.replace(candidate, `[^0-9]`, "")
	count(digits) >= 13
	count(digits) <= 19
	luhn(digits)
}

confirmed("ssn", candidate) if {
	area := substring(candidate, 0, 3)
	not area in {"000", "666"}
	not startswith(area, "9")
	substring(candidate, 4, 2) != "00"
	substring(candidate, 7, 4) != "0000"
}

confirmed("ip_address", candidate) if {
	octets := split(candidate, ".")
	every octet in octets {
		to_number(octet) <= 255
		not leading_zero(octet)
	}
	not octets[0] in {"0", "127"}
}

confirmed("phone", candidate) if {
	startswith(candidate, "+")
	digits := count(regex.replace(candidate, `[^0-9]`, ""))
	digits >= 8
	digits <= 15
}

confirmed("phone", candidate) if {
	not startswith(candidate, "+")
	digits := count(regex.replace(candidate, `[^0-9]`, ""))
	digits >= 10
	digits <= 11
}

leading_zero(octet) if {
	count(octet) > 1
	startswith(octet, "0")
}

luhn(digits) if {
	n := count(digits)
	total := sum([value |
		some i in numbers.range(0, n - 1)
		value := luhn_value(to_number(substring(digits, (n - 1) - i, 1)), i % 2)
	])
	total % 10 == 0
}

luhn_value(digit, 0) := digit

luhn_value(digit, 1) := (digit * 2) - 9 if digit * 2 > 9

luhn_value(digit, 1) := digit * 2 if digit * 2 <= 9

# --- personal data in keys --------------------------------------------------------------------------------------

key_categories := {
	"email": "email", "emailaddress": "email", "phone": "phone", "phonenumber": "phone", "mobilenumber": "phone",
	"telephone": "phone", "ssn": "ssn", "socialsecuritynumber": "ssn", "creditcard": "payment_card",
	"cardnumber": "payment_card", "creditcardnumber": "payment_card", "iban": "iban", "bankaccount": "bank_account",
	"ipaddress": "ip_address", "ip": "ip_address", "dob": "date_of_birth", "dateofbirth": "date_of_birth",
	"birthdate": "date_of_birth", "passport": "passport", "passportnumber": "passport", "nationalid": "national_id",
	"taxid": "tax_id", "driverslicense": "drivers_license", "homeaddress": "address", "address": "address",
	"streetaddress": "address", "firstname": "person_name", "lastname": "person_name", "fullname": "person_name",
}

key_findings contains [category, path] if {
	walk(input.context, [path, value])
	count(path) > 0
	key := path[count(path) - 1]
	is_string(key)
	category := key_categories[lower(regex.replace(key, `[^A-Za-z0-9]`, ""))]
	present(value)
}

present(value) if {
	is_string(value)
	trim_space(value) != ""
}

present(value) if is_number(value)

present(value) if {
	is_object(value)
	count(value) > 0
}

present(value) if {
	is_array(value)
	count(value) > 0
}

findings := value_findings | key_findings

personal := count(findings) > 0

# --- operations -------------------------------------------------------------------------------------------------

internal_providers := {"internal", "selfhosted", "local", "onprem", "onpremise", "private", "inhouse"}

model_calls contains i if {
	some i, op in input.operations
	op.type in {"llm_call", "embedding"}
}

external_model_calls contains i if {
	some i in model_calls
	not internal_providers[lower(regex.replace(object.get(input.operations[i], "provider", ""), `[^A-Za-z0-9]`, ""))]
}

external_calls := count([i | some i, op in input.operations; op.type == "external_call"])

unknown := count([i | some i, op in input.operations; not op.type in known_types]) > 0

known_types := {"llm_call", "embedding", "data_access", "external_call", "tool_call", "file_upload"}

normalized(model) := lower(trim_space(model))

allows(rules, i) if normalized(input.operations[i].model) in {normalized(m) | some m in rules.allowed_models}

penalised(rules) := external_model_calls if rules.allowed_models == null

penalised(rules) := {i | some i in external_model_calls; not allows(rules, i)} if rules.allowed_models != null

default large(_) := false

large(rules) if {
	some op in input.operations
	op.type in {"data_access", "file_upload"}
	object.get(op, "rows", -1) >= rules.large_dataset_rows
}

large(rules) if {
	some op in input.operations
	op.type in {"data_access", "file_upload"}
	object.get(op, "bytes", -1) >= rules.large_dataset_bytes
}

points(true, weight) := weight

points(false, _) := 0

score(rules) := min([
	100,
	sum([
		points(personal, rules.risk_weights.personal_data),
		points(count(penalised(rules)) > 0, rules.risk_weights.external_model_call),
		points(large(rules), rules.risk_weights.large_dataset),
		points(unknown, rules.risk_weights.unknown_operation),
	]),
])

# --- each policy's hard rules, then the decision ----------------------------------------------------------------

violations contains {"policy": k, "rule": "allowed_models"} if {
	some k, rules in data.policies
	rules.allowed_models != null
	some i in model_calls
	not allows(rules, i)
}

violations contains {"policy": k, "rule": "max_tokens"} if {
	some k, rules in data.policies
	rules.max_tokens != null
	some op in input.operations
	op.type == "llm_call"
	object.get(op, "tokens", 0) > rules.max_tokens
}

violations contains {"policy": k, "rule": "max_external_calls"} if {
	some k, rules in data.policies
	rules.max_external_calls != null
	external_calls + count(penalised(rules)) > rules.max_external_calls
}

violations contains {"policy": k, "rule": "block_personal_data"} if {
	some k, rules in data.policies
	rules.block_personal_data
	personal
}

scores := [score(rules) | some rules in data.policies]

blocked_by_score if {
	some k, rules in data.policies
	scores[k] >= rules.risk_threshold
}

default allowed := false

allowed if {
	count(violations) == 0
	not blocked_by_score
}

decision := {
	"allowed": allowed,
	"risk_score": max(array.concat(scores, [0])),
	"violations": violations,
	"personal_data": findings,
}
