from pathlib import Path

import pytest
import yaml

from migraine_ml.data.schema import SchemaFileError, load_schema, schema_from_dict

ROOT = Path(__file__).resolve().parents[2]


def test_default_schema_roles(schema):
    assert len(schema.features) == 23
    assert schema.classification_target == "migraine_occurrence"
    assert schema.regression_target == "migraine_severity"
    assert schema.group is None
    assert schema.columns["sleep_hours"].range == (4.0, 10.0)
    assert schema.columns["migraine_severity"].condition == {
        "column": "migraine_occurrence",
        "equals": 1,
    }
    assert set(schema.binary_features) | set(schema.continuous_features) == set(schema.features)


def test_round_trip_through_dict(schema):
    assert schema_from_dict(schema.to_dict()) == schema


def _spec(**overrides):
    columns = {
        "x": {"dtype": "float", "role": "feature"},
        "y": {"dtype": "binary", "role": "classification_target"},
    }
    columns.update(overrides)
    return {"columns": columns}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "non-empty 'columns'"),
        (_spec(x={"dtype": "text"}), "column 'x': dtype 'text'"),
        (_spec(x={"dtype": "float", "role": "label"}), "column 'x': role 'label'"),
        (_spec(x={"dtype": "float", "range": [5, 1]}), "column 'x': range min > max"),
        (_spec(x={"dtype": "float", "range": [1]}), r"column 'x': range must be \[min, max\]"),
        (_spec(x={"dtype": "category"}), "column 'x': a category column needs 'values'"),
        (_spec(x="float"), "column 'x': expected a mapping"),
        (_spec(y={"dtype": "binary", "role": "feature"}), "names no target"),
        (
            _spec(z={"dtype": "binary", "role": "classification_target"}),
            "more than one column with role 'classification_target'",
        ),
        (
            {"columns": {"y": {"dtype": "binary", "role": "classification_target"}}},
            "names no feature",
        ),
    ],
)
def test_malformed_schema_is_rejected(raw, message):
    with pytest.raises(SchemaFileError, match=message):
        schema_from_dict(raw)


def test_load_schema_reads_yaml(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_spec(c={"dtype": "category", "values": ["a", "b"]})))
    loaded = load_schema(path)
    assert loaded.categorical_features == ["c"]
    assert loaded.columns["c"].allowed() == "{a, b}"


def test_library_names_no_migraine_column(schema):
    """Only the synthetic cohort (the data-generating model) may name dataset columns."""
    names = set(schema.columns)
    modules = sorted((ROOT / "migraine_ml").rglob("*.py"))
    assert len(modules) > 20  # the whole library, subpackages included
    for module in modules:
        if module.name == "synthetic.py":
            continue
        text = module.read_text()
        named = sorted(n for n in names if f'"{n}"' in text or f"'{n}'" in text)
        assert not named, f"{module.name} names dataset columns {named}"


def test_ordered_categories_and_group_ids_without_values():
    schema = schema_from_dict(
        _spec(
            dose={"dtype": "category", "values": ["none", "reduced", "full"], "ordered": True},
            sex={"dtype": "category", "values": ["f", "m"]},
            patient={"dtype": "category", "role": "group"},
        )
    )
    assert schema.ordinal_features == ["dose"]
    assert schema.categorical_features == ["sex"]
    assert schema.group == "patient" and schema.columns["patient"].values is None
    assert schema_from_dict(schema.to_dict()) == schema
    with pytest.raises(SchemaFileError, match="'ordered: true' is for category columns"):
        schema_from_dict(_spec(x={"dtype": "float", "ordered": True}))
    with pytest.raises(SchemaFileError, match="'ordered: true' is for category columns"):
        schema_from_dict(_spec(x={"dtype": "category", "values": ["a"], "ordered": "yes"}))
