"""DagBag: which DAGs a folder of real files defines, and every way a file can fail to load."""
from __future__ import annotations

import os
import pickle
import sys
import threading
import time
from pathlib import Path

import pytest

from nbflow.exceptions import DagNotFound
from nbflow.runtime.dagbag import DagBag
from tests.conftest import write_dag

SIMPLE = """
    from datetime import datetime
    from nbflow import DAG
    from nbflow.operators.empty import EmptyOperator

    with DAG("{dag_id}", schedule="@daily", start_date=datetime(2025, 1, 1)):
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""


def bag(folder: Path, timeout: float = 30.0) -> DagBag:
    return DagBag(folder, import_timeout=timeout)


def first_line(bag: DagBag, path: Path) -> str:
    return bag.import_errors[str(path)].splitlines()[0]


# -- finding DAGs -------------------------------------------------------------------------------------

def test_finds_dags_in_nested_folders_with_their_tasks_and_file(tmp_path: Path) -> None:
    top = write_dag(tmp_path, "top.py", SIMPLE.format(dag_id="top"))
    nested = write_dag(tmp_path, "team/deep/nested.py", SIMPLE.format(dag_id="nested"))
    found = bag(tmp_path)
    assert sorted(found.dags) == ["nested", "top"]
    assert found.import_errors == {}
    assert found.get_dag("top").fileloc == str(top)
    assert found.get_dag("nested").fileloc == str(nested)
    assert found.get_dag("nested").task_dict["b"].upstream_task_ids == {"a"}


def test_dag_decorator_called_without_a_global_is_found_by_autoregistration(tmp_path: Path) -> None:
    write_dag(tmp_path, "flow.py", """
        from datetime import datetime
        from nbflow.sdk import dag, task

        @dag(schedule=None, start_date=datetime(2025, 1, 1))
        def taskflow_only():
            @task
            def one():
                return 1
            one()

        taskflow_only()
    """)
    assert list(bag(tmp_path).dags) == ["taskflow_only"]


def test_dag_created_in_a_function_and_held_by_no_global_is_found(tmp_path: Path) -> None:
    write_dag(tmp_path, "made.py", """
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator

        def make(dag_id):
            with DAG(dag_id, start_date=datetime(2025, 1, 1)):
                EmptyOperator(task_id="only")

        for name in ("made_1", "made_2"):
            make(name)
    """)
    assert sorted(bag(tmp_path).dags) == ["made_1", "made_2"]


def test_helper_module_next_to_dag_files_imports_and_its_factory_dags_belong_to_the_caller(tmp_path: Path) -> None:
    write_dag(tmp_path, "dagbag_helper_factory.py", """
        # a helper, not a DAG file: it only builds DAGs when called
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator

        def build(dag_id):
            with DAG(dag_id, start_date=datetime(2025, 1, 1)) as made:
                EmptyOperator(task_id="step")
            return made
    """)
    user = write_dag(tmp_path, "user.py", """
        # nbflow dag file using a helper module
        from dagbag_helper_factory import build

        build("from_factory")
    """)
    found = bag(tmp_path)
    assert found.import_errors == {}
    assert list(found.dags) == ["from_factory"]
    assert found.get_dag("from_factory").fileloc == str(user)


def test_file_without_the_words_dag_and_nbflow_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    write_dag(tmp_path, "plain.py", f"""
        from pathlib import Path
        Path({str(marker)!r}).write_text("ran")
    """)
    found = bag(tmp_path)
    assert found.dags == {} and found.import_errors == {}
    assert not marker.exists()


def test_notebooks_are_listed_but_contribute_nothing_yet(tmp_path: Path) -> None:
    (tmp_path / "nb.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    found = bag(tmp_path)
    assert found.dags == {} and found.import_errors == {}


def test_functions_defined_in_a_dag_file_pickle_by_reference(tmp_path: Path) -> None:
    write_dag(tmp_path, "pick.py", """
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def work():
            return 42

        with DAG("pick", start_date=datetime(2025, 1, 1)):
            PythonOperator(task_id="work", python_callable=work)
    """)
    callable_ = bag(tmp_path).get_dag("pick").task_dict["work"].python_callable
    assert callable_.__module__ in sys.modules
    assert pickle.loads(pickle.dumps(callable_)) is callable_


def test_a_single_file_can_be_the_dag_folder(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "solo.py", SIMPLE.format(dag_id="solo"))
    write_dag(tmp_path, "other.py", SIMPLE.format(dag_id="other"))
    assert list(DagBag(path, import_timeout=30).dags) == ["solo"]


# -- import errors ------------------------------------------------------------------------------------

def test_syntax_error_is_recorded_with_file_and_line_and_other_files_still_load(tmp_path: Path) -> None:
    write_dag(tmp_path, "good.py", SIMPLE.format(dag_id="good"))
    broken = write_dag(tmp_path, "broken.py", """
        from nbflow import DAG
        dag = DAG("broken"
        x = (
    """)
    found = bag(tmp_path)
    assert list(found.dags) == ["good"]
    assert first_line(found, broken).startswith(f"{broken}:2: SyntaxError: ")
    assert "dag = DAG(" in found.import_errors[str(broken)]


def test_exception_at_import_points_at_the_innermost_line_of_the_dag_file(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "raises.py", """
        from nbflow import DAG

        def settings():
            return {"retries": 1}["retries"] / 0

        value = settings()
    """)
    found = bag(tmp_path)
    assert first_line(found, path) == f"{path}:4: ZeroDivisionError: division by zero"
    text = found.import_errors[str(path)]
    assert "Traceback" in text and "value = settings()" in text
    assert "dagbag.py" not in text  # the traceback starts at the DAG file


def test_cycle_is_an_import_error_that_names_the_cycle(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "cycle.py", """
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator

        with DAG("cyclic", start_date=datetime(2025, 1, 1)):
            a, b, c = (EmptyOperator(task_id=t) for t in "abc")
            a >> b >> c >> a
    """)
    found = bag(tmp_path)
    assert "cyclic" not in found.dags
    line = first_line(found, path)
    assert line.startswith(f"{path}:5: DagCycleException: ")
    assert "a >> b >> c >> a" in line


def test_duplicate_task_id_is_an_import_error_at_the_second_definition(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "dup_task.py", """
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator

        with DAG("dup_task", start_date=datetime(2025, 1, 1)):
            EmptyOperator(task_id="same")
            EmptyOperator(task_id="same")
    """)
    line = first_line(bag(tmp_path), path)
    assert line.startswith(f"{path}:7: DuplicateTaskIdFound: ")
    assert "'same'" in line


def test_same_dag_id_in_two_files_keeps_the_first_and_names_both_in_the_second(tmp_path: Path) -> None:
    first = write_dag(tmp_path, "a_first.py", SIMPLE.format(dag_id="twice"))
    second = write_dag(tmp_path, "b_second.py", SIMPLE.format(dag_id="twice"))
    found = bag(tmp_path)
    assert found.get_dag("twice").fileloc == str(first)
    assert str(first) not in found.import_errors
    line = first_line(found, second)
    assert line.startswith(f"{second}:5: NbflowDagDuplicatedIdException: DAG 'twice' is defined in both")
    assert str(first) in line and str(second) in line


def test_invalid_schedule_is_an_import_error_naming_the_dag(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "sched.py", """
        from datetime import datetime
        from nbflow import DAG

        dag = DAG("bad_cron", schedule="every tuesday", start_date=datetime(2025, 1, 1))
    """)
    line = first_line(bag(tmp_path), path)
    assert line.startswith(f"{path}:4: InvalidScheduleError: ")
    assert "'bad_cron'" in line and "'every tuesday'" in line


def test_sys_exit_in_a_dag_file_is_its_import_error(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "exits.py", """
        import sys
        from nbflow import DAG
        sys.exit(3)
    """)
    assert first_line(bag(tmp_path), path) == f"{path}:3: SystemExit: 3"


def test_one_bad_dag_in_a_file_leaves_its_good_neighbour_loaded(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "pair.py", """
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator

        with DAG("fine", start_date=datetime(2025, 1, 1)):
            EmptyOperator(task_id="x")
        with DAG("loops", start_date=datetime(2025, 1, 1)):
            x, y = EmptyOperator(task_id="x"), EmptyOperator(task_id="y")
            x >> y >> x
    """)
    found = bag(tmp_path)
    assert list(found.dags) == ["fine"]
    assert "DagCycleException" in first_line(found, path)


def test_failed_module_is_removed_from_sys_modules(tmp_path: Path) -> None:
    write_dag(tmp_path, "half.py", """
        from nbflow import DAG
        raise RuntimeError("half way")
    """)
    bag(tmp_path)
    assert not [name for name, module in list(sys.modules.items())
                if getattr(module, "__file__", None) == str(tmp_path / "half.py")]


# -- time limit -----------------------------------------------------------------------------------------

SLEEPER = """
    import time
    from nbflow import DAG
    time.sleep(30)
"""


def test_slow_file_times_out_in_the_main_thread_and_names_the_line(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "slow.py", SLEEPER)
    write_dag(tmp_path, "quick.py", SIMPLE.format(dag_id="quick"))
    started = time.monotonic()
    found = bag(tmp_path, timeout=0.5)
    assert time.monotonic() - started < 10
    assert list(found.dags) == ["quick"]
    assert first_line(found, path).startswith(f"{path}:3: DagImportTimeout: the file took longer than 0.5 s")


def test_slow_file_times_out_off_the_main_thread_without_hanging_the_caller(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "slow_thread.py", SLEEPER)
    write_dag(tmp_path, "quick_thread.py", SIMPLE.format(dag_id="quick_thread"))
    result: dict[str, DagBag] = {}
    worker = threading.Thread(target=lambda: result.update(bag=bag(tmp_path, timeout=0.5)))
    worker.start()
    worker.join(20)
    assert not worker.is_alive()
    found = result["bag"]
    assert list(found.dags) == ["quick_thread"]
    assert first_line(found, path).startswith(f"{path}:3: DagImportTimeout: ")


def test_a_timeout_is_retried_when_the_limit_grows(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "medium.py", """
        import time
        from datetime import datetime
        from nbflow import DAG
        time.sleep(0.6)
        dag = DAG("medium", start_date=datetime(2025, 1, 1))
    """)
    assert str(path) in bag(tmp_path, timeout=0.2).import_errors
    assert list(bag(tmp_path, timeout=10).dags) == ["medium"]


# -- .nbflowignore --------------------------------------------------------------------------------------

def test_nbflowignore_regexps_and_comments_and_nested_files_apply_to_their_subfolders(tmp_path: Path) -> None:
    (tmp_path / ".nbflowignore").write_text("# top-level rules\nscratch_.*\n^vendor  # a whole folder\n")
    write_dag(tmp_path, "kept.py", SIMPLE.format(dag_id="kept"))
    write_dag(tmp_path, "scratch_one.py", SIMPLE.format(dag_id="scratch_one"))
    write_dag(tmp_path, "vendor/lib.py", SIMPLE.format(dag_id="vendor_lib"))
    write_dag(tmp_path, "team/scratch_two.py", SIMPLE.format(dag_id="scratch_two"))  # parent rule applies
    (tmp_path / "team" / ".nbflowignore").write_text("^old\n")
    write_dag(tmp_path, "team/old_flow.py", SIMPLE.format(dag_id="team_old"))
    write_dag(tmp_path, "team/new_flow.py", SIMPLE.format(dag_id="team_new"))
    write_dag(tmp_path, "other/old_flow.py", SIMPLE.format(dag_id="other_old"))  # team's rule does not
    assert sorted(bag(tmp_path).dags) == ["kept", "other_old", "team_new"]


def test_invalid_regexp_in_nbflowignore_is_reported_and_the_other_lines_still_apply(tmp_path: Path) -> None:
    ignore = tmp_path / ".nbflowignore"
    ignore.write_text("skip_me\n(unclosed\n")
    write_dag(tmp_path, "skip_me.py", SIMPLE.format(dag_id="skip_me"))
    write_dag(tmp_path, "keep.py", SIMPLE.format(dag_id="keep"))
    found = bag(tmp_path)
    assert list(found.dags) == ["keep"]
    assert found.import_errors[str(ignore)].startswith(f"{ignore}:2: '(unclosed' is not a valid regular expression")


def test_hidden_folders_such_as_notebook_checkpoints_are_not_scanned(tmp_path: Path) -> None:
    write_dag(tmp_path, "real.py", SIMPLE.format(dag_id="real"))
    write_dag(tmp_path, ".ipynb_checkpoints/real-checkpoint.py", SIMPLE.format(dag_id="real"))
    found = bag(tmp_path)
    assert list(found.dags) == ["real"] and found.import_errors == {}


# -- caching and refresh --------------------------------------------------------------------------------

COUNTED = """
    from datetime import datetime
    from nbflow import DAG
    with open({counter!r}, "a") as counter:
        counter.write("x")
    dag = DAG("{dag_id}", start_date=datetime(2025, 1, 1))
"""


def test_unchanged_file_is_not_executed_again_by_a_new_dagbag(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    folder = tmp_path / "dags"
    write_dag(folder, "counted.py", COUNTED.format(counter=str(counter), dag_id="counted"))
    first = bag(folder)
    second = bag(folder)
    second.refresh()
    assert counter.read_text() == "x"
    assert first.get_dag("counted") is second.get_dag("counted")


def test_refresh_reimports_only_changed_files_and_reports_added_changed_removed(tmp_path: Path) -> None:
    counter_a, counter_b = tmp_path / "a.txt", tmp_path / "b.txt"
    folder = tmp_path / "dags"
    path_a = write_dag(folder, "a.py", COUNTED.format(counter=str(counter_a), dag_id="a"))
    write_dag(folder, "b.py", COUNTED.format(counter=str(counter_b), dag_id="b"))
    found = bag(folder)
    # same size, written at once: only the content tells the change
    write_dag(folder, "a.py", COUNTED.format(counter=str(counter_a), dag_id="z"))
    (folder / "b.py").unlink()
    write_dag(folder, "c.py", SIMPLE.format(dag_id="c"))
    changes = found.refresh()
    assert changes.changed == (str(path_a),)
    assert changes.removed == (str(folder / "b.py"),)
    assert changes.added == (str(folder / "c.py"),)
    assert sorted(found.dags) == ["c", "z"]
    assert counter_a.read_text() == "xx" and counter_b.read_text() == "x"
    assert not found.refresh()


def test_fixing_a_broken_file_clears_its_import_error(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "fixme.py", "from nbflow import DAG\nraise ValueError('not yet')\n")
    found = bag(tmp_path)
    assert str(path) in found.import_errors
    write_dag(tmp_path, "fixme.py", SIMPLE.format(dag_id="fixed"))
    found.refresh()
    assert found.import_errors == {} and list(found.dags) == ["fixed"]


def test_a_file_that_breaks_after_loading_keeps_its_dags_as_last_loaded(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "etl.py", SIMPLE.format(dag_id="etl"))
    found = bag(tmp_path)
    loaded = found.get_dag("etl")
    path.write_text(path.read_text() + "\nthis is broken(\n")
    found.refresh()
    assert found.get_dag("etl") is loaded
    assert found.kept == {"etl": str(path)}
    assert "SyntaxError" in first_line(found, path)


def test_a_broken_file_mended_gives_its_new_dags_and_keeps_nothing(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "etl.py", SIMPLE.format(dag_id="etl"))
    found = bag(tmp_path)
    path.write_text("raise ValueError('half written')\n# dag nbflow\n")
    found.refresh()
    write_dag(tmp_path, "etl.py", SIMPLE.format(dag_id="etl_v2"))
    found.refresh()
    assert sorted(found.dags) == ["etl_v2"] and found.kept == {} and found.import_errors == {}


def test_a_removed_file_takes_its_kept_dags_with_it(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "etl.py", SIMPLE.format(dag_id="etl"))
    found = bag(tmp_path)
    path.write_text(path.read_text() + "\n1 / 0\n")
    found.refresh()
    path.unlink()
    found.refresh()
    assert found.dags == {} and found.kept == {}


def test_process_file_loads_one_file(tmp_path: Path) -> None:
    found = DagBag(tmp_path, import_timeout=30, collect=False)
    path = write_dag(tmp_path, "one.py", SIMPLE.format(dag_id="one"))
    write_dag(tmp_path, "two.py", SIMPLE.format(dag_id="two"))
    assert [dag.dag_id for dag in found.process_file(path)] == ["one"]
    assert list(found.dags) == ["one"]


# -- lookups ----------------------------------------------------------------------------------------------

def test_get_dag_miss_lists_known_ids(tmp_path: Path) -> None:
    write_dag(tmp_path, "x.py", SIMPLE.format(dag_id="known_one"))
    with pytest.raises(DagNotFound, match=r"DAG 'nope' not found in .*; known: known_one$"):
        bag(tmp_path).get_dag("nope")


def test_get_dag_miss_shows_the_import_error_of_the_file_that_defines_it(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "etl.py", """
        from datetime import datetime
        from nbflow import DAG
        dag = DAG("etl", start_date=datetime(2025, 1, 1))
        1 / 0
    """)
    with pytest.raises(DagNotFound) as caught:
        bag(tmp_path).get_dag("etl")
    assert str(caught.value) == f"DAG 'etl' could not be loaded: {path}:4: ZeroDivisionError: division by zero"


def test_dag_folder_goes_on_sys_path_once(tmp_path: Path) -> None:
    write_dag(tmp_path, "x.py", SIMPLE.format(dag_id="x"))
    bag(tmp_path)
    bag(tmp_path).refresh()
    assert sys.path.count(os.path.abspath(tmp_path)) == 1


def test_a_child_forked_while_another_thread_parses_can_still_parse(tmp_path: Path) -> None:
    from nbflow.runtime import dagbag as dagbag_module

    write_dag(tmp_path, "forked.py", SIMPLE.format(dag_id="forked"))
    holding, release = threading.Event(), threading.Event()

    def hold_the_parse_lock() -> None:
        with dagbag_module._lock:
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_parse_lock)
    holder.start()
    holding.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: its copy of the lock has an owner that does not exist here
        try:
            os._exit(0 if "forked" in bag(tmp_path).dags else 1)
        except BaseException:
            os._exit(2)
    release.set()
    holder.join()
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    if done == (0, 0):
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the parse lock")
    assert os.waitstatus_to_exitcode(done[1]) == 0
