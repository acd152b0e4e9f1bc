"""Refusals: every one a client or a worker can meet, with one message in
each language, from this one catalogue.

API clients get `code` and the English message; screens show the message in
the worker's language. Messages take `str.format` fields from `params`.
"""
from __future__ import annotations

from typing import Any

# code -> (HTTP status, English, 中文)
CATALOGUE: dict[str, tuple[int, str, str]] = {
    # Order API (codes fixed by the public contract)
    "invalid_request": (422, "The request is not valid: {summary}", "请求无效：{summary}"),
    "unknown_sku": (422, "Unknown SKU: {skus}", "未知商品编码：{skus}"),
    "conflict": (409, "{reason}", "{reason}"),
    "not_found": (404, "No such {what}.", "找不到该{what}。"),
    "unauthorized": (401, "A valid bearer token is required.", "需要有效的访问令牌。"),
    "forbidden": (403, "This needs {needed}.", "需要{needed}权限。"),
    "too_large": (413, "The request body is over {limit} bytes.", "请求体超过 {limit} 字节。"),
    "rate_limited": (429, "Too many requests; retry after {seconds} s.", "请求过多，请 {seconds} 秒后重试。"),
    "unsupported_media_type": (415, "Send the body as application/json.", "请求体须为 application/json。"),
    "method_not_allowed": (405, "This address does not take {method}.", "该地址不支持 {method}。"),
    # The database is down or did not answer in time (any request)
    "unavailable": (503, "The system cannot reach its database right now and is reconnecting; nothing was "
                         "recorded. Try again in {seconds} s.",
                    "系统暂时连不上数据库，正在重新连接，本次操作未记录。请 {seconds} 秒后重试。"),
    # Order lifecycle
    "not_serviceable": (422, "No node delivers same-city to this address: the nearest, {node}, is {km} km away "
                             "and its riders go {radius} km. Send it as express.",
                        "该地址不在任何节点的同城配送范围内：最近的节点 {node} 距离 {km} 公里，配送半径 {radius} 公里。"
                        "请改为快递配送。"),
    "not_serviceable_no_node": (422, "No active node delivers same-city. Send the order as express.",
                                "当前没有可同城配送的节点，请改为快递配送。"),
    "order_already_shipped": (409, "Every fulfilment of this order has shipped; it can no longer be cancelled.",
                              "该订单的履约单均已出库，无法取消。"),
    "receipt_not_allowed": (409, "Receipt can be confirmed once every fulfilment has shipped; {pending} not yet.",
                            "所有履约单出库后才能确认收货；尚有 {pending} 未出库。"),
    "order_cancelled": (409, "This order was cancelled.", "该订单已取消。"),
    "external_id_reused": (409, "external_id {external_id} was already used for a different order.",
                           "外部单号 {external_id} 已用于另一笔不同的订单。"),
    "barcode_taken": (409, "Barcode {barcode} already belongs to SKU {sku}.", "条码 {barcode} 已属于商品 {sku}。"),
    "redispatch_not_allowed": (409, "Fulfilment {fulfilment} is {status}; only fulfilments not yet packed can move.",
                               "履约单 {fulfilment} 状态为 {status}，只有未打包的履约单可以改派。"),
    # Handheld: logging in (every screen message says what to do instead)
    "login_failed": (401, "Badge or PIN not recognised. Scan your badge again.",
                     "工牌或密码不正确，请重新扫描工牌。"),
    "login_locked": (429, "Too many wrong PINs: this badge is locked for {minutes} more minutes, "
                          "or until a lead resets the PIN.",
                     "密码错误次数过多：该工牌已锁定 {minutes} 分钟，或请组长重置密码。"),
    "session_expired": (401, "Your shift login has ended. Scan your badge to log in again.",
                        "本班次登录已过期，请重新扫描工牌登录。"),
    "signed_out": (401, "You were signed out: a logout on another device, a new PIN, a lead, or your user was "
                        "deactivated. Scan your badge to log in again.",
                   "您已被登出：在其他设备上退出、更换了密码、组长登出或账号已停用。请重新扫描工牌登录。"),
    "sign_out_unknown_worker": (404, "No worker with badge {badge} at {node}. "
                                     "Scan the badge of the worker to sign out.",
                                "{node} 没有工牌为 {badge} 的员工。请扫描要登出的员工的工牌。"),
    "cross_site_request": (403, "This came from another site ({source}), not from luyue's own screens. "
                                "Open luyue and do it there.",
                           "该请求来自其他网站（{source}），而非履约系统本身的页面。请打开履约系统后再操作。"),
    "no_node": (403, "Your user has no node. Ask a lead to assign you to one.",
                "您的账号未分配履约节点，请联系组长分配。"),
    # Any field of any screen or request, checked before it is read (app/web/inputs.py)
    "input_too_long": (422, "{field_en} is {length} characters long; at most {limit} are taken. Scan or type it "
                            "again.",
                       "{field_zh}长度为 {length} 个字符，最多 {limit} 个。请重新扫描或输入。"),
    "input_control_character": (422, "{field_en} holds a control character ({character}) that no label or "
                                     "keyboard sends. Scan or type it again.",
                                "{field_zh}含有控制字符（{character}），条码和键盘都不会发送。请重新扫描或输入。"),
    # Handheld: picking (拣货)
    "nothing_to_pick": (422, "No orders are waiting to be picked at {node}.", "{node} 暂无待拣货的订单。"),
    "no_pick_list": (422, "You hold no pick list. Claim the next one.", "您当前没有拣货单，请领取下一张。"),
    "pick_list_taken": (409, "Pick list {list} was just taken by {picker}. Claim again for the next one.",
                        "拣货单 {list} 刚被 {picker} 领取，请重新领取下一张。"),
    "pick_list_released": (409, "Lead {lead} released pick list {list}: you no longer hold it, and it waits for "
                                "the next picker as it was. Claim the next list.",
                           "组长 {lead} 已释放拣货单 {list}：您不再持有该单，它将原样等待下一位拣货员。请领取下一张拣货单。"),
    "pick_list_not_held": (409, "Pick list {list} is not being picked; nothing to release.",
                           "拣货单 {list} 不在拣货中，无需释放。"),
    "scan_unreadable": (422, "Nothing was read. Scan again.", "未读到条码，请重新扫描。"),
    "not_a_tote": (422, "{scanned} is a location or product code, not a tote. Scan an empty tote for slot {slot}.",
                   "{scanned} 是库位或商品条码，不是周转箱。请为第 {slot} 格扫描一个空周转箱。"),
    "tote_label_too_long": (422, "That label is {length} characters long, not a tote's (at most {limit}). Scan "
                                 "the label on an empty tote for slot {slot}.",
                            "该标签长 {length} 个字符，不是周转箱标签（最多 {limit} 个）。请为第 {slot} 格扫描空周转箱上的标签。"),
    "tote_in_use": (422, "Tote {tote} already holds {fulfilment}. Scan an empty tote for slot {slot}.",
                    "周转箱 {tote} 已装有 {fulfilment}，请为第 {slot} 格扫描一个空周转箱。"),
    "wrong_location": (422, "Wrong location: you scanned {scanned}. Go to {expected} and scan its label.",
                       "库位错误：扫描的是 {scanned}。请到库位 {expected} 扫描库位标签。"),
    "wrong_product": (422, "Wrong product: {scanned} is not on this list. Pick {expected} ({sku}) here.",
                      "商品错误：{scanned} 不在本拣货单上。此处应拣 {expected}（{sku}）。"),
    "product_of_another_line": (422, "{scanned} is {other} for another line. Here pick {expected} ({sku}) first.",
                                "{scanned} 是其他行的商品 {other}。请先拣本行的 {expected}（{sku}）。"),
    "over_pick": (422, "Too many: this line needs {quantity} of {sku}, that would make {would_have}. "
                       "Put them in tote {tote}.",
                  "超拣：本行只需 {quantity} 件 {sku}，这样会变成 {would_have} 件。请放入周转箱 {tote}。"),
    "pick_incomplete": (422, "{left} more of {sku} to pick first: scan each unit or enter the quantity, "
                             "or report the bin short.",
                        "还需拣 {left} 件 {sku}：请逐件扫描或输入数量，或上报缺货。"),
    "wrong_tote": (422, "Wrong tote: you scanned {scanned}. Put {sku} for {fulfilment} in tote {expected} "
                        "(slot {slot}).",
                   "周转箱错误：扫描的是 {scanned}。请将 {sku} 放入 {fulfilment} 的周转箱 {expected}（第 {slot} 格）。"),
    "scan_product_first": (422, "Scan one unit of {sku} first, then enter how many you have.",
                           "请先扫描一件 {sku}，再输入数量。"),
    "quantity_invalid": (422, "Enter a whole number from 1 to {most}.", "请输入 1 到 {most} 之间的整数。"),
    "short_needs_location": (422, "Scan location {expected} first, then report it short.",
                             "请先扫描库位 {expected}，再上报缺货。"),
    "short_not_needed": (422, "All {quantity} of {sku} are picked; nothing is short. Scan tote {tote}.",
                         "{sku} 的 {quantity} 件已全部拣齐，无需上报缺货。请扫描周转箱 {tote}。"),
    # Handheld: packing (打包)
    "pack_not_found": (422, "{code} is not a picked tote or fulfilment at this node. Scan the tote's label.",
                       "{code} 不是本节点已拣货的周转箱或履约单，请扫描周转箱标签。"),
    "pack_not_picked": (422, "Fulfilment {fulfilment} is {status}, not picked: it cannot be packed yet.",
                        "履约单 {fulfilment} 状态为 {status}，尚未拣货完成，不能打包。"),
    "pack_intercepted": (409, "STOP: order of {fulfilment} was cancelled. Do not pack; put the items back where "
                              "they were picked: {bins}.",
                         "拦截：履约单 {fulfilment} 的订单已取消。请勿打包，将商品放回原拣货库位：{bins}。"),
    "pack_unknown_product": (422, "{code} is not a product barcode. Scan the barcode on the item.",
                             "{code} 不是商品条码，请扫描商品上的条码。"),
    "pack_wrong_product": (422, "{sku} is not in {fulfilment}. Set it aside and scan an item from the tote.",
                           "{sku} 不属于 {fulfilment}，请放到一边，扫描周转箱内的商品。"),
    "pack_extra_item": (422, "Extra item: all {needed} of {sku} are already packed. Set this one aside.",
                        "多余商品：{sku} 共 {needed} 件已全部装箱，请将这件放到一边。"),
    "pack_empty_parcel": (422, "The parcel is empty. Scan the items into it before closing.",
                          "包裹为空，请先扫描商品装箱再封箱。"),
    "pack_weight_needed": (422, "Enter the parcel's weight in grams (1 to {limit}), or put it on the scale.",
                           "请输入包裹重量（克，1 到 {limit}），或放上电子秤。"),
    "printer_unavailable": (503, "Printer {printer} did not answer ({reason}). The parcel stays packed; "
                                 "print from the parcel page when the printer is back.",
                            "打印机 {printer} 无响应（{reason}）。包裹保持已打包状态，打印机恢复后可在包裹页面重新打印。"),
    "pack_already_packed": (409, "Fulfilment {fulfilment} is already packed (parcels: {parcels}). To reprint a "
                                 "label, scan the parcel's label.",
                            "履约单 {fulfilment} 已打包（{parcels} 个包裹）。如需重打面单，请扫描包裹面单。"),
    "parcel_not_found": (422, "No parcel {code} at this node. Scan the tracking or SSCC barcode on the label.",
                         "本节点没有包裹 {code}，请扫描面单上的运单号或 SSCC 条码。"),
    "printer_unknown": (422, "There is no printer named {printer}. Choose one from the list.",
                        "没有名为 {printer} 的打印机，请从列表中选择。"),
    "labels_none": (422, "No parcel was labelled at this node on {day}.", "本节点 {day} 没有已贴单的包裹。"),
    # Handheld: outbound (出库交接)
    "ship_unknown_carrier": (422, "{carrier} is not a carrier we hand over to.", "{carrier} 不是可交接的承运商。"),
    "ship_unknown_parcel": (422, "{code} is not a parcel label. Scan the tracking or SSCC barcode.",
                            "{code} 不是包裹面单条码，请扫描运单号或 SSCC 条码。"),
    "ship_intercepted": (409, "STOP: parcel {tracking} ({fulfilment}) is intercepted, its order was cancelled. "
                              "Do not load it; take it to the returns cage (scanned under Returns, it says "
                              "where its items go back).",
                         "拦截：包裹 {tracking}（{fulfilment}）的订单已取消。请勿装车，送至退货区（在“退货入库”中扫描，"
                         "可查看商品应放回的库位）。"),
    "ship_other_carrier": (422, "Parcel {tracking} goes with {carrier}, not {expected}. Put it on its own carrier's "
                                "cage.",
                           "包裹 {tracking} 属于 {carrier}，不是 {expected}。请放到对应承运商的区域。"),
    "ship_already_shipped": (409, "Parcel {tracking} already left on handover {handover}.",
                             "包裹 {tracking} 已在交接单 {handover} 出库。"),
    "ship_not_packed": (422, "Parcel {tracking} is not closed yet. Finish packing it first.",
                        "包裹 {tracking} 尚未封箱，请先完成打包。"),
    "ship_other_node": (422, "Parcel {tracking} belongs to another node. Do not load it here.",
                        "包裹 {tracking} 属于其他节点，请勿在此装车。"),
    "ship_handover_closed": (409, "Handover {handover} is closed. Open a new one to scan more parcels.",
                             "交接单 {handover} 已关闭，请新建交接单继续扫描。"),
    "handover_not_found": (422, "There is no handover {handover} at this node. Choose the carrier again.",
                           "本节点没有交接单 {handover}，请重新选择承运商。"),
    "handover_empty": (422, "Handover {handover} has no parcels yet. Scan parcels onto it first.",
                       "交接单 {handover} 还没有包裹，请先扫描包裹。"),
    "parcel_received_back": (409, "Parcel {tracking} came back and was received into stock ({at}). It does not "
                                  "leave again; set the empty box aside.",
                             "包裹 {tracking} 已退回并重新入库（{at}），不能再出库。请将空箱放到一边。"),
    # Handheld: returns at the dock (退货入库)
    "return_unknown_parcel": (422, "{code} is not a parcel label or a return reference. Scan the tracking or SSCC "
                                   "barcode of the returned parcel, or the return's reference (R-…).",
                              "{code} 不是包裹面单条码或退货单号，请扫描退回包裹的运单号或 SSCC 条码，或退货单号（R-…）。"),
    "return_other_node": (422, "Parcel {tracking} shipped from {node}, not from here. Do not unpack it; send it "
                               "back to {node}.",
                          "包裹 {tracking} 从 {node} 发出，不属于本节点。请勿拆包，转回 {node}。"),
    "return_already_received": (409, "Parcel {tracking} was already received back ({at}, {by}). Its items are in "
                                     "stock; nothing more to do.",
                                "包裹 {tracking} 已退货入库（{at}，{by}），商品已在库存中，无需再次操作。"),
    "return_not_shipped": (422, "Parcel {tracking} has not left yet: it is not a return. Leave it for outbound.",
                           "包裹 {tracking} 尚未出库，不是退货。请留在出库区。"),
    "return_intercepted": (422, "Parcel {tracking} never left: its order was cancelled at the dock, and its items "
                                "were never taken off stock. Do not receive it; unpack it and put the items back "
                                "where they were picked: {bins}.",
                           "包裹 {tracking} 未出库：订单已在月台拦截，商品从未扣减库存。请勿入库，拆包后将商品放回原拣货库位："
                           "{bins}。"),
    "return_delivered": (409, "Parcel {tracking} was delivered to the customer and no return is authorised for it. "
                              "Do not receive it; give it to your lead, who can authorise the return on the "
                              "order's page.",
                         "包裹 {tracking} 已妥投给顾客，且没有已授权的退货。请勿入库，交给组长，组长可在订单页面授权退货。"),
    "return_not_reported": (422, "Parcel {tracking} left on {shipped} and its carrier has not reported it returned "
                                 "(last report: {report}); no customer return is authorised for it. Do not receive "
                                 "it; set it aside and give it to your lead.",
                            "包裹 {tracking} 于 {shipped} 出库，承运商未报告退回（最新状态：{report}），也没有已授权的"
                            "顾客退货。请勿入库，放到一边并交给组长。"),
    "return_unknown_bin": (422, "{code} is not a bin at {node}. Scan the label of the bin the items go into.",
                           "{code} 不是 {node} 的库位。请扫描放回商品的库位标签。"),
    "return_bin_needed": (422, "Scan the bin {sku} goes into: it has no usual bin here.",
                          "请扫描 {sku} 放入的库位：该商品在本节点没有常用库位。"),
    # Customer returns (顾客退货): authorised by the platform or a lead, received at the dock
    "return_id_reused": (409, "return_id {return_id} was already used for a different return of this order.",
                         "退货编号 {return_id} 已用于该订单的另一笔不同的退货。"),
    "return_nothing_delivered": (409, "Nothing of order {external_id} has been delivered yet: a return can be "
                                      "authorised once units are delivered.",
                                 "订单 {external_id} 尚无妥投的商品：商品妥投后才能授权退货。"),
    "return_nothing_returnable": (422, "Choose at least one unit to return (up to what was delivered and not yet "
                                       "authorised).",
                                  "请至少选择一件退货商品（不超过已妥投且尚未授权退货的数量）。"),
    "return_over_delivered": (422, "At most {most} of {sku} can be returned: {delivered} delivered, {authorised} "
                                   "already authorised for return.",
                              "{sku} 最多可退 {most} 件：已妥投 {delivered} 件，已授权退货 {authorised} 件。"),
    "rma_other_node": (422, "Return {ref} is of goods shipped from {node}, not from here. Do not unpack it; send it "
                            "to {node}.",
                       "退货 {ref} 的商品从 {node} 发出，不属于本节点。请勿拆包，转至 {node}。"),
    "rma_already_received": (409, "Return {ref} was already received ({at}, {by}). Nothing more to do; set any "
                                  "further item aside and give it to your lead.",
                             "退货 {ref} 已收货（{at}，{by}），无需再次操作；多出的商品请放到一边并交给组长。"),
    "rma_unknown_product": (422, "{code} is not a product barcode. Scan the barcode on the returned item.",
                            "{code} 不是商品条码，请扫描退回商品上的条码。"),
    "rma_not_in_return": (422, "{sku} is not in return {ref} (it holds {skus}). Set the item aside and give it to "
                               "your lead.",
                          "{sku} 不在退货 {ref} 中（应有：{skus}）。请将该商品放到一边并交给组长。"),
    "rma_nothing_received": (422, "Nothing of return {ref} was received yet: scan its items first. If none came, "
                                  "leave the return to your lead.",
                             "退货 {ref} 尚未收到任何商品：请先扫描商品。如果商品未到，请交给组长处理。"),
    "rma_line_complete": (422, "All {quantity} of {sku} in return {ref} are received. Set this one aside and give "
                               "it to your lead.",
                          "退货 {ref} 中的 {sku} 共 {quantity} 件已全部收货。请将这件放到一边并交给组长。"),
    # Carrier tracking updates (per item of a batch)
    "unknown_tracking_number": (404, "{tracking} is not a parcel of carrier {carrier}.",
                                "{tracking} 不是承运商 {carrier} 的包裹。"),
    "parcel_not_shipped": (409, "Parcel {tracking} has not left the dock ({status}); send the update again once "
                                "it is scanned out.",
                           "包裹 {tracking} 尚未出库（{status}）；出库扫描后请重新发送。"),
    # Holds (挂起)
    "hold_not_allowed": (409, "Fulfilment {fulfilment} is {status}; only fulfilments not yet shipped can be held.",
                         "履约单 {fulfilment} 状态为 {status}，只有未出库的履约单可以挂起。"),
    "hold_reason_needed": (422, "Say why the fulfilment is held.", "请填写挂起原因。"),
    "hold_until_past": (422, "A hold on {fulfilment} must last until a time in the future.",
                        "履约单 {fulfilment} 的挂起截止时间须晚于现在。"),
    "hold_not_found": (409, "Fulfilment {fulfilment} is not on hold.", "履约单 {fulfilment} 未被挂起。"),
    # Handheld: same-city rider (同城配送)
    "ride_unknown_parcel": (422, "{code} is not a parcel label. Scan the tracking or SSCC barcode.",
                            "{code} 不是包裹面单条码，请扫描运单号或 SSCC 条码。"),
    "ride_not_same_city": (422, "Parcel {tracking} goes with {carrier}, not a same-city rider. Leave it at the dock "
                                "for its courier.",
                           "包裹 {tracking} 属于 {carrier}，不是同城配送。请留在月台交给对应快递。"),
    "ride_other_node": (422, "Parcel {tracking} belongs to another node. Do not take it.",
                        "包裹 {tracking} 属于其他节点，请勿取走。"),
    "ride_not_packed": (422, "Parcel {tracking} is not closed and labelled yet. Ask the packer to finish it.",
                        "包裹 {tracking} 尚未封箱贴单，请联系打包员完成打包。"),
    "ride_intercepted": (409, "STOP: parcel {tracking} is intercepted, its order was cancelled. Do not take it; "
                              "give it back to the dock.",
                         "拦截：包裹 {tracking} 的订单已取消。请勿取走，交回月台。"),
    "ride_other_rider": (409, "Parcel {tracking} is already with rider {rider}.",
                         "包裹 {tracking} 已由骑手 {rider} 取走。"),
    "ride_delivered": (409, "Parcel {tracking} was already delivered.", "包裹 {tracking} 已妥投。"),
    "ride_not_on_list": (422, "Parcel {tracking} is not on your drop list. Scan it at the dock when you pick it up.",
                         "包裹 {tracking} 不在您的配送清单上，请在月台取件时扫描。"),
    "delivery_code_format": (422, "Type the 4-digit code the customer received.",
                             "请输入顾客收到的 4 位取件码。"),
    "delivery_code_wrong": (422, "Wrong code for parcel {tracking}. Ask the customer to read the code from their "
                                 "message again (tries left: {left}).",
                            "包裹 {tracking} 的取件码错误。请顾客重新核对短信中的取件码；还可尝试 {left} 次。"),
    "delivery_code_locked": (409, "{limit} wrong codes for parcel {tracking}: codes are locked. Take a photo of the "
                                  "handover, or call your lead.",
                             "包裹 {tracking} 已输错 {limit} 次取件码，取件码已锁定。请拍照留证，或联系组长。"),
    "photo_needed": (422, "Take a photo of the parcel handed over (at the door or with the customer).",
                     "请拍摄包裹交付照片（门口或与顾客合影）。"),
    "photo_too_large": (413, "The photo is over {limit_mb} MB. Take it again at a lower resolution.",
                        "照片超过 {limit_mb} MB，请降低分辨率重新拍摄。"),
    "photo_not_image": (422, "That file is not a photo (JPEG, PNG, WebP or HEIC). Take the photo again.",
                        "该文件不是照片（JPEG、PNG、WebP 或 HEIC），请重新拍照。"),
    # Cycle counts (盘点)
    "count_unknown_bin": (422, "{code} is not a bin at {node}. Scan the label of the bin you are counting.",
                          "{code} 不是 {node} 的库位。请扫描正在盘点的库位标签。"),
    "count_unknown_product": (422, "{code} is not a product barcode. Scan the barcode on the item.",
                              "{code} 不是商品条码。请扫描商品上的条码。"),
    "count_other_product": (422, "That is {scanned}, not {sku}. Count {sku} first and confirm, then scan {scanned} "
                                 "as the next product.",
                            "这是 {scanned}，不是 {sku}。请先清点完 {sku} 并确认，再把 {scanned} 作为下一个商品扫描。"),
    "count_quantity_invalid": (422, "Enter how many units are on the shelf: a whole number from 0 to {most}.",
                               "请输入货架上的数量：0 到 {most} 之间的整数。"),
    "count_already_decided": (409, "The count of {sku} in {location} was already decided ({status}, by {by}). "
                                   "Nothing more to do.",
                              "{location} 中 {sku} 的盘点已处理（{status}，处理人 {by}），无需再操作。"),
    # The lead's dashboard (班组长看板)
    "redispatch_reason_needed": (422, "Say why {fulfilment} moves to another node.",
                                 "请填写履约单 {fulfilment} 改派的原因。"),
}

# Refusals whose API `code` is a contract code rather than their own name.
_API_CODE = {
    "input_too_long": "invalid_request",
    "input_control_character": "invalid_request",
    "not_serviceable_no_node": "not_serviceable",
    "order_already_shipped": "conflict",
    "receipt_not_allowed": "conflict",
    "order_cancelled": "conflict",
    "external_id_reused": "conflict",
    "barcode_taken": "conflict",
    "redispatch_not_allowed": "conflict",
    "hold_not_allowed": "conflict",
    "hold_not_found": "conflict",
    "return_id_reused": "conflict",
    "return_nothing_delivered": "conflict",
}


class Refusal(Exception):
    """A domain rule said no. Raised before anything is written, or inside a
    transaction that is then rolled back."""

    def __init__(self, key: str, details: dict[str, Any] | None = None, **params: Any):
        if key not in CATALOGUE:
            raise KeyError(f"refusal {key!r} is not in the catalogue")
        self.key = key
        self.params = params
        self.details = details or {}
        super().__init__(self.message("en"))

    @property
    def status(self) -> int:
        return CATALOGUE[self.key][0]

    @property
    def code(self) -> str:
        return _API_CODE.get(self.key, self.key)

    def message(self, language: str = "en") -> str:
        _, en, zh = CATALOGUE[self.key]
        template = zh if language.startswith("zh") else en
        return template.format(**self.params)

    def body(self, language: str = "en") -> dict[str, Any]:
        details = dict(self.details)
        if self.code != self.key:
            details.setdefault("reason", self.key)
        return {"error": {"code": self.code, "message": self.message(language), "details": details}}
