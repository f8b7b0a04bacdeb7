import pytest

from app.domain.passwords import password_problems


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Str0ng!Passw0rd", []),
        ("Ab1!", ["Use at least 8 characters."]),
        ("A" * 60 + "b" * 60 + "1!" + "c" * 10, ["Use at most 128 characters."]),
        ("lowercase1!", ["Add an upper-case letter."]),
        ("UPPERCASE1!", ["Add a lower-case letter."]),
        ("NoDigits!!", ["Add a digit."]),
        ("NoSpecial123", ["Add a special character (!@#$%^&*()_+-=[]{}|;:,.<>?)."]),
        ("Password1!", ["This password is too common; choose another."]),
        ("P@ssw0rd", ["This password is too common; choose another."]),
        ("Welcome@123", ["This password is too common; choose another."]),
    ],
)
def test_password_policy_reports_each_problem(password, expected):
    assert password_problems(password) == expected


def test_password_containing_username_is_refused():
    assert password_problems("Xy!9traderbob", username="traderbob") == [
        "Do not include your username in the password."
    ]


def test_password_policy_reports_all_problems_at_once():
    assert password_problems("abc") == [
        "Use at least 8 characters.",
        "Add an upper-case letter.",
        "Add a digit.",
        "Add a special character (!@#$%^&*()_+-=[]{}|;:,.<>?).",
    ]
