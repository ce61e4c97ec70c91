//! The benchmark's minimal libpq client: connects with libpq (`libpq.so.5`, the library psql
//! uses), runs one query, prints how many rows it returned, disconnects. What a C program of ten
//! lines does, without needing libpq's headers to build it.
//!
//! `libpq-client CONNINFO SQL`, or `libpq-client CONNINFO @FILE` for the SQL in FILE (sent whole,
//! in one query message: the floor of a client that sends a whole set in one round trip).

use std::ffi::{c_char, c_int, c_void, CString};

type Conn = *mut c_void;
type Res = *mut c_void;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, conninfo, sql] = args.as_slice() else {
        eprintln!("usage: libpq-client CONNINFO SQL");
        std::process::exit(2);
    };
    // SAFETY: the symbols are libpq's, with the C signatures its documentation gives; every
    // pointer passed is either one libpq returned or a NUL-terminated string that outlives it.
    unsafe {
        let lib = libc::dlopen(c"libpq.so.5".as_ptr(), libc::RTLD_NOW);
        if lib.is_null() {
            eprintln!("cannot load libpq.so.5");
            std::process::exit(1);
        }
        let sym = |name: &std::ffi::CStr| {
            let f = libc::dlsym(lib, name.as_ptr());
            assert!(!f.is_null(), "libpq has no {name:?}");
            f
        };
        let connectdb: extern "C" fn(*const c_char) -> Conn = std::mem::transmute(sym(c"PQconnectdb"));
        let status: extern "C" fn(Conn) -> c_int = std::mem::transmute(sym(c"PQstatus"));
        let exec: extern "C" fn(Conn, *const c_char) -> Res = std::mem::transmute(sym(c"PQexec"));
        let result_status: extern "C" fn(Res) -> c_int = std::mem::transmute(sym(c"PQresultStatus"));
        let ntuples: extern "C" fn(Res) -> c_int = std::mem::transmute(sym(c"PQntuples"));
        let clear: extern "C" fn(Res) = std::mem::transmute(sym(c"PQclear"));
        let finish: extern "C" fn(Conn) = std::mem::transmute(sym(c"PQfinish"));
        let conninfo = CString::new(conninfo.as_str()).expect("no NUL in the conninfo");
        let sql = match sql.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(file).unwrap_or_else(|e| {
                eprintln!("cannot read {file}: {e}");
                std::process::exit(2)
            }),
            None => sql.clone(),
        };
        let sql = CString::new(sql).expect("no NUL in the SQL");
        let conn = connectdb(conninfo.as_ptr());
        if status(conn) != 0 {
            eprintln!("cannot connect");
            std::process::exit(1);
        }
        let res = exec(conn, sql.as_ptr());
        // PGRES_COMMAND_OK (1) or PGRES_TUPLES_OK (2).
        let ok = matches!(result_status(res), 1 | 2);
        println!("{}", ntuples(res));
        clear(res);
        finish(conn);
        std::process::exit(if ok { 0 } else { 1 });
    }
}
