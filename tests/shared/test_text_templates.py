from hub.shared.text_templates import placeholder_problem


def test_known_placeholders_pass_and_others_are_named():
    allowed = ["contact_name", "phone"]
    assert placeholder_problem("WhatsApp: {contact_name} {phone}", allowed) is None
    assert placeholder_problem("no placeholders", allowed) is None
    assert placeholder_problem("Deal {customer}", allowed) == \
        "unknown placeholder {customer}; use {contact_name}, {phone}"
    assert placeholder_problem("Deal {contact_name", allowed).startswith("bad placeholder syntax")
