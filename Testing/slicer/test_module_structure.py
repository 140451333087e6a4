"""Structure of the Slicer module, checked without Slicer: MedDenoise.py (ast), the .ui (XML), CMake, catalog files.

MedDenoise.py imports qt/ctk and cannot be imported under slicer-core, so it is parsed.
"""

import ast
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "MedDenoise"
SOURCE = (MODULE / "MedDenoise.py").read_text(encoding="utf-8")
TREE = ast.parse(SOURCE)
UI = ET.parse(MODULE / "Resources" / "UI" / "MedDenoise.ui").getroot()
CLASSES = {node.name: node for node in TREE.body if isinstance(node, ast.ClassDef)}


def parameter_fields() -> dict:
    """Annotated fields of the @parameterNodeWrapper class: name -> annotation source."""
    wrapped = [c for c in CLASSES.values() if any(ast.unparse(d) == "parameterNodeWrapper" for d in c.decorator_list)]
    assert len(wrapped) == 1, "exactly one @parameterNodeWrapper class expected"
    return {item.target.id: ast.unparse(item.annotation) for item in wrapped[0].body if isinstance(item, ast.AnnAssign)}


def ui_widgets() -> dict:
    return {w.get("name"): w for w in UI.iter("widget")}


def bound_widgets() -> dict:
    """objectName -> (class, SlicerParameterName) for widgets bound to the parameter node."""
    found = {}
    for widget in UI.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                found[widget.get("name")] = (widget.get("class"), prop.findtext("string"))
    return found


class TestModuleFile:
    def test_required_classes_and_bases(self):
        bases = {name: [ast.unparse(b) for b in node.bases] for name, node in CLASSES.items()}
        assert bases["MedDenoise"] == ["ScriptedLoadableModule"]
        assert bases["MedDenoiseWidget"][0] == "ScriptedLoadableModuleWidget" and "VTKObservationMixin" in \
            bases["MedDenoiseWidget"]
        assert bases["MedDenoiseLogic"][0] == "ScriptedLoadableModuleLogic"
        assert bases["MedDenoiseTest"] == ["ScriptedLoadableModuleTest"]
        assert "MedDenoiseParameterNode" in CLASSES

    def test_no_torch_or_subprocess_in_the_module_file(self):
        imported = set()
        for node in ast.walk(TREE):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & {"torch", "subprocess", "MedDenoiseLib", "SimpleITK"}
        widget_source = ast.unparse(CLASSES["MedDenoiseWidget"])
        assert "torch" not in widget_source and "subprocess" not in widget_source and "Popen" not in widget_source

    def test_widget_reads_the_parameter_node_not_its_widgets(self):
        apply = next(f for f in CLASSES["MedDenoiseWidget"].body
                     if isinstance(f, ast.FunctionDef) and f.name == "onApplyButton")
        text = ast.unparse(apply)
        assert "currentNode()" not in text and ".currentText" not in text and "params.inputVolume" in text

    def test_self_test_is_real_and_enabled(self):
        test = CLASSES["MedDenoiseTest"]
        methods = {f.name for f in test.body if isinstance(f, ast.FunctionDef)}
        run = ast.unparse(next(f for f in test.body if isinstance(f, ast.FunctionDef) and f.name == "runTest"))
        tests = {m for m in methods if m.startswith("test_")}
        assert tests and all(f"self.{m}()" in run for m in tests)
        assert "testLogic = False" not in SOURCE and "logic.denoise(" in ast.unparse(test)

    def test_parameter_node_fields(self):
        fields = parameter_fields()
        assert fields["inputVolume"] == "vtkMRMLScalarVolumeNode"
        assert fields["uncertaintyVolume"] == "vtkMRMLLabelMapVolumeNode"
        assert "WithinRange(0.0, 1.0)" in fields["opacity"]
        for name in ("modality", "tta", "uncertaintyMethod", "device"):
            assert "Choice(" in fields[name], name


class TestUiFile:
    def test_root_is_a_qmrmlwidget(self):
        assert UI.find("widget").get("class") == "qMRMLWidget" and UI.find("widget").get("name") == "MedDenoise"

    def test_every_ui_attribute_used_by_the_module_exists(self):
        used = set(re.findall(r"self\.ui\.(\w+)", SOURCE))
        assert used, "the widget should use self.ui"
        missing = used - set(ui_widgets())
        assert not missing, f"self.ui names without a widget in the .ui: {sorted(missing)}"

    def test_every_parameter_name_is_a_field_with_a_matching_widget(self):
        fields = parameter_fields()
        bound = bound_widgets()
        assert {p for _c, p in bound.values()} <= set(fields), "SlicerParameterName without a parameter field"
        kinds = {"QComboBox": "Choice(", "ctkSliderWidget": "float", "QSpinBox": "int"}
        for name, (cls, param) in bound.items():
            if cls == "qMRMLNodeComboBox":
                types = [s.text for s in ui_widgets()[name].iter("string")
                         if s.text and s.text.startswith("vtkMRML")]
                assert types[0] == fields[param], f"{name} node types {types} vs field {fields[param]}"
            else:
                assert kinds[cls] in fields[param], f"{name} ({cls}) cannot show {fields[param]}"

    def test_issue_widgets_are_present(self):
        names = set(ui_widgets())
        assert {"inputSelector", "modalityComboBox", "modelComboBox", "importModelButton", "ttaComboBox",
                "uncertaintyMethodComboBox", "deviceComboBox", "outputSelector", "uncertaintySelector", "applyButton",
                "progressBar", "logTextEdit", "opacitySlider", "adaptButton", "statusLabel",
                "sideBySideButton", "dicomExportButton"} <= names

    def test_mrml_widgets_get_the_scene(self):
        connections = {(c.findtext("sender"), c.findtext("signal"), c.findtext("receiver"), c.findtext("slot"))
                       for c in UI.iter("connection")}
        mrml = [name for name, w in ui_widgets().items() if w.get("class", "").startswith("qMRML")
                and w.get("class") != "qMRMLWidget"]
        assert mrml
        for name in mrml:
            assert ("MedDenoise", "mrmlSceneChanged(vtkMRMLScene*)", name, "setMRMLScene(vtkMRMLScene*)") in connections

    def test_output_selectors_default_to_create_new(self):
        for name in ("outputSelector", "uncertaintySelector"):
            props = {p.get("name"): p for p in ui_widgets()[name].findall("property")}
            assert props["noneEnabled"].findtext("bool") == "true" and "Create new" in props["noneDisplay"].findtext("string")


def cmake_list(text: str, variable: str) -> list:
    match = re.search(r"set\(" + variable + r"\s+(.*?)\)", text, re.S)
    assert match, variable
    return [token for token in match.group(1).split() if not token.startswith("#")]


class TestCMake:
    text = (MODULE / "CMakeLists.txt").read_text(encoding="utf-8")

    def test_lists_every_shipped_python_file(self):
        scripts = set(cmake_list(self.text, "MODULE_PYTHON_SCRIPTS"))
        shipped = {str(p.relative_to(MODULE)) for p in MODULE.rglob("*.py") if "Testing" not in p.parts}
        assert {s.replace("${MODULE_NAME}", "MedDenoise") for s in scripts} >= shipped
        engine = set(cmake_list(self.text, "MEDDENOISE_ENGINE_SCRIPTS"))
        on_disk = {str(p.relative_to(ROOT / "MedDenoiseLib")) for p in (ROOT / "MedDenoiseLib").rglob("*.py")}
        assert on_disk - engine == set(), (f"MedDenoiseLib files missing from MedDenoise/CMakeLists.txt: "
                                           f"{sorted(on_disk - engine)}; run "
                                           "`.venv/bin/python Testing/slicer/make_assets.py cmake`")
        assert all((ROOT / "MedDenoiseLib" / f).is_file() for f in engine), "CMake lists engine files that do not exist"
        assert "${MEDDENOISE_ENGINE_BUILD_SCRIPTS}" in scripts and "Scripts/meddenoise_worker.py" in scripts

    def test_model_glob_installs_every_shipped_card_and_weights_file(self):
        from pathlib import PurePosixPath

        patterns = [PurePosixPath(p) for p in re.findall(r"\$\{MEDDENOISE_MODELS_SOURCE_DIR\}/(\S+)", self.text)]
        models = ROOT / "Resources" / "Models"
        shipped = [PurePosixPath(p.relative_to(models).as_posix()) for p in models.rglob("*")
                   if p.name == "card.json" or p.suffix == ".safetensors"]
        assert shipped
        shipped.append(PurePosixPath("us_routed/light/model.safetensors"))  # a routed model's members sit deeper
        for path in shipped:
            assert any(len(path.parts) == len(p.parts) and path.match(str(p)) for p in patterns), path

    def test_resources_exist_and_macro_options(self):
        resources = [r.replace("${MODULE_NAME}", "MedDenoise") for r in cmake_list(self.text, "MODULE_PYTHON_RESOURCES")]
        assert set(resources) == {"Resources/Icons/MedDenoise.png", "Resources/UI/MedDenoise.ui",
                                  "Resources/requirements.txt"}
        assert all((MODULE / r).is_file() for r in resources)
        assert "WITH_GENERIC_TESTS" in self.text and "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in self.text
        assert "add_subdirectory(Testing)" in self.text and "Resources/Models" in self.text
        testing = (MODULE / "Testing" / "Python" / "CMakeLists.txt").read_text(encoding="utf-8")
        for script in re.findall(r"SCRIPT\s+(\S+)\)", testing):
            assert (MODULE / "Testing" / "Python" / script).is_file()

    def test_extension_cmake(self):
        text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
        assert "project(MedDenoise)" in text and "add_subdirectory(MedDenoise)" in text
        for key in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS"):
            assert re.search(rf"set\(EXTENSION_{key} \S", text), key
        assert re.search(r"set\(EXTENSION_DEPENDS PyTorch\)", text)
        for url in re.findall(r"https://raw\.githubusercontent\.com/\S+?/main/(\S+?\.png)", text):
            assert (ROOT / url).is_file(), url


class TestCatalog:
    def test_catalog_entry(self):
        entry = json.loads((ROOT / "MedDenoise.json").read_text(encoding="utf-8"))
        assert {"$schema", "category", "scm_url"} <= set(entry)
        assert set(entry) <= {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
                              "build_subdirectory", "enabled", "dicom_support_rule", "tier"}
        assert entry["category"] == "Filtering" and entry["build_dependencies"] == ["PyTorch"]
        assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.1.json#")

    def test_s4ext_matches(self):
        pairs = dict(line.split(" ", 1) for line in (ROOT / "MedDenoise.s4ext").read_text(encoding="utf-8").splitlines()
                     if line and not line.startswith("#"))
        assert pairs["depends"] == "PyTorch" and pairs["category"] == "Filtering" and pairs["scm"] == "git"

    def test_icons_and_screenshot_are_pngs(self):
        from PIL import Image

        for path in (MODULE / "Resources/Icons/MedDenoise.png", ROOT / "Resources/Icons/MedDenoise.png"):
            with Image.open(path) as image:
                assert image.format == "PNG" and image.size == (128, 128)
        with Image.open(ROOT / "Resources/Screenshots/MedDenoise_compare.png") as shot:
            assert shot.format == "PNG" and shot.size[0] >= 400


class TestImports:
    def test_slicer_side_package_pulls_no_torch_or_qt(self):
        code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
                "import MedDenoiseSlicer.logic, MedDenoiseSlicer.selftest\n"
                "bad = sorted(m for m in ('torch', 'qt', 'ctk', 'SimpleITK') if m in sys.modules)\n"
                "print(','.join(bad))")
        result = subprocess.run([sys.executable, "-c", code, str(MODULE), str(ROOT)], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == ""

    def test_worker_never_imports_slicer_and_shows_the_cli(self):
        worker = MODULE / "Scripts" / "meddenoise_worker.py"
        tree = ast.parse(worker.read_text(encoding="utf-8"))
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(m.split(".")[0] in ("slicer", "qt", "vtk") for m in modules)
        pytest.importorskip("torch")
        result = subprocess.run([sys.executable, str(worker), "denoise", "--help"], capture_output=True, text=True,
                                timeout=120, cwd="/")
        assert result.returncode == 0 and "--uncertainty-labels" in result.stdout

    def test_module_files_stay_small(self):
        for path in list(MODULE.rglob("*.py")):
            assert len(path.read_text(encoding="utf-8").splitlines()) <= 430, path
