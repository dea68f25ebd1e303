//! The scenarios of the original C++ implementation's own tests, as specifications of
//! `phantom_core::Database`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use phantom_core::{Column, ColumnType, Database, Error, Filter, Literal, Value};

fn users_columns() -> Vec<Column> {
    vec![
        Column::new("id", ColumnType::Int),
        Column::new("name", ColumnType::String),
        Column::new("email", ColumnType::String),
        Column::new("age", ColumnType::Int),
    ]
}

fn seed(db: &Database) {
    db.create_database("test_db").unwrap();
    db.create_table("test_db", "users", users_columns())
        .unwrap();
    db.insert(
        "test_db",
        "users",
        [
            ("id", Literal::from(1)),
            ("name", "John Doe".into()),
            ("email", "john@example.com".into()),
            ("age", 30.into()),
        ],
    )
    .unwrap();
    db.insert(
        "test_db",
        "users",
        [
            ("id", Literal::from(2)),
            ("name", "Jane Smith".into()),
            ("email", "jane@example.com".into()),
            ("age", 25.into()),
        ],
    )
    .unwrap();
}

#[test]
fn a_saved_database_loads_in_a_fresh_instance_without_creating_it_first() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        seed(&db);
        let path = db.save_to_disk("test_db").unwrap();
        assert_eq!(path, dir.path().join("test_db.db"));
        // The header keeps the spec's exact lines (a C++ reader and scripts parse them).
        let text = std::fs::read_to_string(&path).unwrap();
        let head: Vec<&str> = text.lines().take(5).collect();
        assert_eq!(
            head[..3],
            [
                "# PhantomDB Database File",
                "# Database: test_db",
                "# Format: CSV"
            ]
        );
        let generated = head[3].strip_prefix("# Generated: ").unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(generated, "%Y-%m-%d %H:%M:%S UTC").is_ok(),
            "{generated:?} is not YYYY-MM-DD HH:MM:SS UTC"
        );
    }
    let fresh = Database::new();
    fresh.set_data_directory(dir.path()).unwrap();
    fresh.load_from_disk("test_db").unwrap();
    assert_eq!(fresh.list_tables("test_db").unwrap(), vec!["users"]);
    let schema = fresh.table_schema("test_db", "users").unwrap();
    let names: Vec<&str> = schema.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "name", "email", "age"]);
    let rows = fresh.select_all("test_db", "users").unwrap();
    assert_eq!(
        rows.rows,
        vec![
            vec![
                Value::Int(1),
                "John Doe".into(),
                "john@example.com".into(),
                Value::Int(30)
            ],
            vec![
                Value::Int(2),
                "Jane Smith".into(),
                "jane@example.com".into(),
                Value::Int(25)
            ],
        ]
    );
}

#[test]
fn update_and_insert_then_save_under_another_name_and_load_that() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        seed(&db);
        let n = db
            .update(
                "test_db",
                "users",
                &Filter::parse("id = 1").unwrap(),
                [("age", 31)],
            )
            .unwrap();
        assert_eq!(n, 1);
        db.insert(
            "test_db",
            "users",
            [("id", Literal::from(3)), ("name", "Bob".into())],
        )
        .unwrap();
        let path = db.save_to_disk_as("test_db", "test_db_copy").unwrap();
        assert_eq!(path, dir.path().join("test_db_copy.db"));
    }
    let fresh = Database::open(dir.path()).unwrap();
    fresh.load_from_disk("test_db_copy").unwrap();
    let rows = fresh.select_all("test_db_copy", "users").unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.get(0, "age"), Some(&Value::Int(31)));
    assert_eq!(rows.get(2, "name"), Some(&"Bob".into()));
    assert_eq!(rows.get(2, "email"), Some(&Value::Null));
    // The original is untouched and still its own database.
    assert_eq!(fresh.select_all("test_db", "users").unwrap().len(), 3);
    assert_eq!(
        fresh.list_databases().unwrap(),
        vec!["test_db", "test_db_copy"]
    );
}

#[test]
fn wrong_types_and_unknown_fields_are_rejected_on_insert_and_update_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    seed(&db);
    let before = db.select_all("test_db", "users").unwrap();

    let err = db.insert("test_db", "users", [("id", "abc")]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Storage(phantom_storage::Error::InvalidValue {
                ty: ColumnType::Int,
                ..
            })
        ),
        "{err}"
    );
    let err = db
        .insert(
            "test_db",
            "users",
            [("id", Literal::from(9)), ("nope", "x".into())],
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Storage(phantom_storage::Error::UnknownColumn { ref column, .. }) if column == "nope"),
        "{err}"
    );
    let err = db
        .insert("test_db", "users", [("age", Literal::from(true))])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Storage(phantom_storage::Error::TypeMismatch { .. })
        ),
        "{err}"
    );

    let all = Filter::parse("id >= 1").unwrap();
    let err = db
        .update("test_db", "users", &all, [("age", "old")])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Storage(phantom_storage::Error::InvalidValue { .. })
        ),
        "{err}"
    );
    let err = db
        .update("test_db", "users", &all, [("nope", 1)])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Storage(phantom_storage::Error::UnknownColumn { .. })
        ),
        "{err}"
    );
    let err = db.insert("nope_db", "users", [("id", 1)]).unwrap_err();
    assert!(matches!(err, Error::UnknownDatabase { .. }), "{err}");
    let err = db.insert("test_db", "nope", [("id", 1)]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Storage(phantom_storage::Error::UnknownTable { .. })
        ),
        "{err}"
    );

    assert_eq!(db.select_all("test_db", "users").unwrap(), before);
}

#[test]
fn the_schema_keeps_creation_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_database("d").unwrap();
    let cols = vec![
        Column::new("zeta", ColumnType::String),
        Column::new("alpha", ColumnType::Int),
        Column::new("mid", ColumnType::Timestamp),
    ];
    db.create_table("d", "t", cols.clone()).unwrap();
    assert_eq!(db.table_schema("d", "t").unwrap().columns(), &cols[..]);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.table_schema("d", "t").unwrap().columns(), &cols[..]);
}

#[test]
fn delete_by_condition_removes_exactly_the_matching_rows_and_empty_conditions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    seed(&db);
    assert_eq!(
        db.delete("test_db", "users", &Filter::parse("age < 30").unwrap())
            .unwrap(),
        1
    );
    let rows = db.select_all("test_db", "users").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows.get(0, "name"), Some(&"John Doe".into()));
    // The original's map form, and the refusal of an empty one.
    assert!(matches!(
        Filter::from_map(HashMap::<String, String>::new()),
        Err(Error::EmptyFilter)
    ));
    let by_map = Filter::from_map([("id", "1"), ("name", "John Doe")]).unwrap();
    assert_eq!(db.delete("test_db", "users", &by_map).unwrap(), 1);
    assert!(db.select_all("test_db", "users").unwrap().is_empty());
}

#[test]
fn two_threads_inserting_a_hundred_rows_each_leave_two_hundred_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(dir.path()).unwrap());
    db.create_database("d").unwrap();
    db.create_table(
        "d",
        "t",
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("by", ColumnType::Int),
        ],
    )
    .unwrap();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..100 {
                    db.insert(
                        "d",
                        "t",
                        [
                            ("id", Literal::from(t * 1000 + i)),
                            ("by", Literal::from(t)),
                        ],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(db.select_all("d", "t").unwrap().len(), 200);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.select_all("d", "t").unwrap().len(), 200);
}
