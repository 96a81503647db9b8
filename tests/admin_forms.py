"""Submitting admin forms as a browser would: read the page's form, change some values, post it."""
from html.parser import HTMLParser
from typing import Any


class FormValues(HTMLParser):
    """The values a browser without JavaScript submits from one form of a page."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside = form_id, False
        self.values: dict[str, list[str]] = {}
        self.select: dict[str, Any] | None = None
        self.textarea: str | None = None
        self.text: list[str] = []

    def add(self, name: str, value: str) -> None:
        self.values.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or "disabled" in attrs:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.add(name, attrs.get("value") or "on")
            elif kind not in ("submit", "button", "image", "reset", "file"):
                self.add(name, attrs.get("value") or "")
        elif tag == "select" and name:
            self.select = {"name": name, "multiple": "multiple" in attrs, "first": None, "chosen": []}
        elif tag == "option" and self.select is not None:
            value = attrs.get("value") or ""
            if self.select["first"] is None:
                self.select["first"] = value
            if "selected" in attrs:
                self.select["chosen"].append(value)
        elif tag == "textarea" and name:
            self.textarea, self.text = name, []

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select" and self.select is not None:
            chosen = self.select["chosen"]
            if not chosen and not self.select["multiple"] and self.select["first"] is not None:
                chosen = [self.select["first"]]
            for value in chosen:
                self.add(self.select["name"], value)
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            text = "".join(self.text)
            self.add(self.textarea, text[1:] if text.startswith("\n") else text)
            self.textarea = None

    def handle_data(self, data):
        if self.textarea is not None:
            self.text.append(data)


def page_form(client, url: str, form_id: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, f"GET {url} → {response.status_code}"
    parser = FormValues(form_id)
    parser.feed(response.content.decode())
    return {name: values if len(values) > 1 else values[0] for name, values in parser.values.items()}


def with_changes(values: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    values = dict(values)
    for name, value in changes.items():
        if value is None:
            values.pop(name, None)  # an unticked checkbox is not sent
        else:
            values[name] = [str(v) for v in value] if isinstance(value, list) else str(value)
    return values


def form_errors(response) -> str:
    if response.context is None:
        return response.content.decode()[:500]
    found = []
    for key in ("adminform", "form"):
        form = response.context.get(key)
        form = getattr(form, "form", form)
        if form is not None and getattr(form, "errors", None):
            found.append(form.errors.as_json())
    for inline in response.context.get("inline_admin_formsets") or []:
        found += [str(e) for e in inline.formset.errors if e] + [str(inline.formset.non_form_errors())]
    return "; ".join(found) or "the page came back without a visible error"


def submit(client, url: str, form_id: str, changes: dict[str, Any]):
    values = with_changes(page_form(client, url, form_id), changes)
    values.setdefault("_save", "Save")
    response = client.post(url, values)
    assert response.status_code == 302, f"POST {url} was refused: {form_errors(response)}"
    return response
