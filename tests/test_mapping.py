"""Column mapping from the headers of the exports people bring."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm import mapping
from crm.errors import InputUnusable
from crm.imports import aliases


def mapped(header_line: str, delimiter: str = ",") -> dict[str, str]:
    found = mapping.auto_mapping(header_line.split(delimiter))
    return {header: field for header, field in found.items() if field}


def test_linkedin_connections() -> None:
    assert mapped("First Name,Last Name,URL,Email Address,Company,Position,Connected On") == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "URL": "linkedin_url",
        "Email Address": "email",
        "Company": "company",
        "Position": "title",
        "Connected On": "connected_on",
    }


def test_google_contacts_current_layout() -> None:
    headers = (
        "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,"
        "Phonetic Last Name,Name Prefix,Name Suffix,Nickname,File As,Organization Name,"
        "Organization Title,Organization Department,Birthday,Notes,Photo,Labels,"
        "E-mail 1 - Label,E-mail 1 - Value,E-mail 2 - Label,E-mail 2 - Value,"
        "Phone 1 - Label,Phone 1 - Value,Address 1 - Label,Address 1 - City"
    )
    assert mapped(headers) == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Organization Name": "company",
        "Organization Title": "title",
        "Notes": "notes",
        "Labels": "tags",
        "E-mail 1 - Value": "email",
        "Phone 1 - Value": "phone",
        "Address 1 - City": "location",
    }


def test_google_contacts_older_layout() -> None:
    headers = (
        "Name,Given Name,Additional Name,Family Name,Yomi Name,Given Name Yomi,Nickname,"
        "Birthday,Location,Occupation,Notes,Group Membership,E-mail 1 - Type,E-mail 1 - Value,"
        "Phone 1 - Type,Phone 1 - Value,Organization 1 - Type,Organization 1 - Name,"
        "Organization 1 - Title"
    )
    assert mapped(headers) == {
        "Given Name": "first_name",
        "Family Name": "last_name",  # with both parts, "Name" is not needed
        "Location": "location",
        "Notes": "notes",
        "Group Membership": "tags",
        "E-mail 1 - Value": "email",
        "Phone 1 - Value": "phone",
        "Organization 1 - Name": "company",
        "Organization 1 - Title": "title",  # a better title than Occupation
    }


def test_outlook_job_title_wins_over_the_honorific_title() -> None:
    headers = (
        "First Name,Middle Name,Last Name,Title,Suffix,Initials,Web Page,E-mail Address,"
        "E-mail 2 Address,Primary Phone,Home Phone,Mobile Phone,Company,Department,Job Title,"
        "Business Phone,Business City"
    )
    found = mapped(headers)
    assert found["Job Title"] == "title" and "Title" not in found
    assert found["E-mail Address"] == "email"
    assert found["Mobile Phone"] == "phone"
    assert found["Company"] == "company"
    assert found["Business City"] == "location"


def test_outlook_short_layout() -> None:
    assert mapped("First Name,Last Name,E-mail Address,Company,Job Title,Business Phone") == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "E-mail Address": "email",
        "Company": "company",
        "Job Title": "title",
        "Business Phone": "phone",
    }


def test_an_ats_export() -> None:
    assert mapped(
        "Candidate Name,Email,Phone,Current Company,Current Title,Location,Tags,Source"
    ) == {
        "Candidate Name": "full_name",
        "Email": "email",
        "Phone": "phone",
        "Current Company": "company",
        "Current Title": "title",
        "Location": "location",
        "Tags": "tags",
        "Source": "source",
    }


def test_german_french_and_spanish_headers() -> None:
    assert mapped("Vorname;Name;E-Mail;Telefon;Firma;Position;Ort;Fähigkeiten", ";") == {
        "Vorname": "first_name",
        "Name": "last_name",  # beside Vorname, Name is the family name
        "E-Mail": "email",
        "Telefon": "phone",
        "Firma": "company",
        "Position": "title",
        "Ort": "location",
        "Fähigkeiten": "skills",
    }
    assert mapped("Prénom;Nom;Courriel;Téléphone;Entreprise;Intitulé du poste;Ville", ";") == {
        "Prénom": "first_name",
        "Nom": "last_name",
        "Courriel": "email",
        "Téléphone": "phone",
        "Entreprise": "company",
        "Intitulé du poste": "title",
        "Ville": "location",
    }
    assert mapped("Nombre,Apellidos,Correo electrónico,Empresa,Puesto,Ciudad")["Apellidos"] == (
        "last_name"
    )


def test_our_own_export_maps_back_to_the_same_fields() -> None:
    headers = (
        "first_name,last_name,email,linkedin_url,phone,title,company,location,country,remote,"
        "role_family,years_experience,skills,tags,source,consent_status,owner,created_at"
    )
    found = mapped(headers)
    assert all(found[h] == h for h in headers.split(",")[:15])
    assert {"consent_status", "owner", "created_at"}.isdisjoint(found)


def test_repeated_and_blank_headers() -> None:
    found = mapping.auto_mapping(["Email", "", "Email", "First Name", "Full Name"])
    # Without a last name, the full name stays mapped: it is used when the first name is blank.
    assert found == {
        "Email": "email",
        "": None,
        "First Name": "first_name",
        "Full Name": "full_name",
    }


def test_header_key_ignores_case_accents_and_punctuation() -> None:
    assert aliases.header_key(" E-Mail  Address ") == "emailaddress"
    assert aliases.header_key("Prénom") == "prenom"


def test_overrides_move_a_field_and_check_names() -> None:
    headers = ["Email", "Work Email", "Name"]
    base = mapping.auto_mapping(headers)
    assert mapping.with_overrides(headers, base, {"Work Email": "email"}) == {
        "Email": None,
        "Work Email": "email",
        "Name": "full_name",
    }
    with pytest.raises(InputUnusable, match="'emial' is not a field"):
        mapping.with_overrides(headers, base, {"Email": "emial"})
    with pytest.raises(InputUnusable, match="no column 'Mail'"):
        mapping.with_overrides(headers, base, {"Mail": "email"})


def test_a_mapping_without_a_name_or_an_identity_is_unusable() -> None:
    assert mapping.mapping_problem({"Email": "email", "Name": "full_name"}) is None
    assert "name" in (mapping.mapping_problem({"Email": "email"}) or "")
    assert "email address or a LinkedIn URL" in (
        mapping.mapping_problem({"Name": "full_name"}) or ""
    )
    assert "None of the file's columns" in (mapping.mapping_problem({"Foo": None}) or "")


def test_same_headers_ignores_order_and_case() -> None:
    assert aliases.same_headers(["Email", "First Name"], ["first name", "E-mail"])
    assert not aliases.same_headers(["Email", "First Name"], ["First Name", "Email", "Phone"])


@given(st.lists(st.sampled_from(sorted(mapping.KNOWN_HEADER_KEYS) + ["x", "y", ""]), max_size=12))
def test_auto_mapping_gives_each_field_to_at_most_one_header(headers: list[str]) -> None:
    found = mapping.auto_mapping(headers)
    assert list(found) == list(dict.fromkeys(headers))
    fields = [field for field in found.values() if field]
    assert len(fields) == len(set(fields))
    assert set(fields) <= set(mapping.CANDIDATE_FIELDS)
